"""The JSON Schema tooling of the contracts: export the schemas, check their compatibility.

A build-time tool (`python -m contract_schemas export|check`), kept out of the `contracts`
package so that no service image ships it; services never import it.
"""
