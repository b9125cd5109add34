"""The JSON Schema tooling of the contracts: export the schemas, check their compatibility.

The only part of `contracts` that touches the file system, and only when run as
`python -m contracts export|check`; services never import it.
"""
