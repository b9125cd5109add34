"""One answer as the shared cache keeps it: what the client gets again, when it was received,
how long it stays fresh, and which request headers it was chosen by (its `Vary`).

Its age is the upstream's `Age` when it arrived plus the time since, by the wall clocks of the
gateway replicas that stored and serve it (kept in step by NTP; RFC 9111 §4.2.3's corrections for
a response's time in transit are left out for upstreams one short hop away). It is encoded as one
JSON line of metadata (JSON escapes every line break) followed by the body's bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.cache_control import Freshness, header_values, vary_names
from gateway.forwarding import RawHeaders

Variant = tuple[tuple[str, str], ...]


def variant_of(request_headers: RawHeaders, names: tuple[str, ...]) -> Variant:
    """What the request said in each of the headers `names` (absent: empty), whitespace-trimmed."""
    return tuple(
        (name, ", ".join(v.strip() for v in header_values(request_headers, name.encode())))
        for name in names
    )


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: RawHeaders  # as relayed to a client, without Age
    body: bytes
    received_at: float  # wall clock, seconds
    initial_age: float  # the upstream's Age on arrival
    freshness: Freshness
    variant: Variant

    @classmethod
    def received(
        cls,
        *,
        status: int,
        headers: RawHeaders,
        body: bytes,
        freshness: Freshness,
        request_headers: RawHeaders,
        now: float,
    ) -> StoredResponse:
        ages = header_values(headers, b"age")
        initial_age = float(ages[0]) if ages and ages[0].strip().isdigit() else 0.0
        return cls(
            status=status,
            headers=[(n, v) for n, v in headers if n.lower() != b"age"],
            body=body,
            received_at=now,
            initial_age=initial_age,
            freshness=freshness,
            variant=variant_of(request_headers, vary_names(headers)),
        )

    @property
    def etag(self) -> str | None:
        tags = header_values(self.headers, b"etag")
        return tags[0] if tags else None

    @property
    def retention_seconds(self) -> float:
        """How long it is worth keeping: until even serving it stale is over."""
        lifetime = self.freshness.lifetime + self.freshness.stale_while_revalidate
        return max(1.0, lifetime - self.initial_age)

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.received_at)

    def ttl(self, now: float) -> float:
        """Seconds of freshness left; negative once stale."""
        return self.freshness.lifetime - self.age(now)

    def servable_stale(self, now: float) -> bool:
        return -self.ttl(now) < self.freshness.stale_while_revalidate

    def selected_by(self, request_headers: RawHeaders) -> bool:
        """Whether a request with these headers gets this variant."""
        names = tuple(name for name, _ in self.variant)
        return variant_of(request_headers, names) == self.variant

    def encode(self) -> bytes:
        meta = {
            "status": self.status,
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in self.headers],
            "received_at": self.received_at,
            "initial_age": self.initial_age,
            "lifetime": self.freshness.lifetime,
            "stale_while_revalidate": self.freshness.stale_while_revalidate,
            "variant": self.variant,
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, blob: bytes) -> StoredResponse:
        line, _, body = blob.partition(b"\n")
        meta = json.loads(line)
        return cls(
            status=meta["status"],
            headers=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in meta["headers"]],
            body=body,
            received_at=meta["received_at"],
            initial_age=meta["initial_age"],
            freshness=Freshness(meta["lifetime"], meta["stale_while_revalidate"]),
            variant=tuple((name, value) for name, value in meta["variant"]),
        )
