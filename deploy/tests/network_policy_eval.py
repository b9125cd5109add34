"""Evaluates Kubernetes NetworkPolicies the way a conforming CNI does, for tests.

A connection from `source` to `destination:port` is allowed when both ends allow it: the
destination's ingress (no policy with `Ingress` selects it, or a rule of one matches the source
and port) and the source's egress (likewise). Peers: `podSelector` alone means pods of the
policy's namespace, `namespaceSelector` pods of the matching namespaces, both together pods
matching both; `ipBlock` matches addresses. An empty `from`/`to` matches everything, an empty
`ports` every port; named ports resolve against the destination pod's container ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pod (with a namespace) or an address outside the cluster (namespace None)."""

    name: str
    ip: str
    namespace: str | None = None
    namespace_labels: Labels = field(default_factory=dict)
    labels: Labels = field(default_factory=dict)
    named_ports: Mapping[str, int] = field(default_factory=dict)


def _expression_holds(expression: Mapping[str, Any], labels: Labels) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    msg = f"unknown selector operator {operator}"
    raise ValueError(msg)


def selects(selector: Mapping[str, Any] | None, labels: Labels) -> bool:
    """Whether a LabelSelector matches `labels` (an empty selector matches everything)."""
    if selector is None:
        return True
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in wanted.items()) and all(
        _expression_holds(expression, labels)
        for expression in selector.get("matchExpressions") or []
    )


def _in_block(block: Mapping[str, Any], ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return _in_block(peer["ipBlock"], other.ip)
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), other.labels)


def _port_matches(
    ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str, named: Mapping[str, int]
) -> bool:
    rules = list(ports or [])
    if not rules:
        return True
    for rule in rules:
        if rule.get("protocol", "TCP") != protocol:
            continue
        wanted = rule.get("port")
        if wanted is None:
            return True
        number = named.get(wanted) if isinstance(wanted, str) else int(wanted)
        if number is None:
            continue
        if number <= port <= int(rule.get("endPort", number)):
            return True
    return False


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    """`policyTypes`, or its default: Ingress, plus Egress when the policy has egress rules."""
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _direction_allows(
    policies: Iterable[Mapping[str, Any]],
    *,
    direction: str,
    subject: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str,
    named_ports: Mapping[str, int],
) -> bool:
    if subject.namespace is None:  # outside the cluster: no policy applies
        return True
    applicable = [
        policy
        for policy in policies
        if policy["metadata"].get("namespace") == subject.namespace
        and direction in _policy_types(policy["spec"])
        and selects(policy["spec"].get("podSelector"), subject.labels)
    ]
    if not applicable:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in applicable:
        namespace = policy["metadata"]["namespace"]
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key) or []
            if peers and not any(_peer_matches(peer, namespace, other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), port, protocol, named_ports):
                return True
    return False


def ingress_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether the policies selecting `destination` accept `source` on `port`."""
    return _direction_allows(
        policies,
        direction="Ingress",
        subject=destination,
        other=source,
        port=port,
        protocol=protocol,
        named_ports=destination.named_ports,
    )


def egress_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether the policies selecting `source` let it reach `destination` on `port`."""
    return _direction_allows(
        policies,
        direction="Egress",
        subject=source,
        other=destination,
        port=port,
        protocol=protocol,
        named_ports=destination.named_ports,
    )


def connection_allowed(
    policies: Iterable[Mapping[str, Any]],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether `source` may open a connection to `destination` on `port` (both ends agree)."""
    policies = list(policies)
    return ingress_allowed(policies, source, destination, port, protocol) and egress_allowed(
        policies, source, destination, port, protocol
    )
