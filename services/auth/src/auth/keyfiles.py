"""Signing keys on disk: one PKCS#8 PEM private key per file, named `<kid>.pem`.

Rotation writes a new key named by its UTC creation time (`k20261125T130000Z`), so the newest key
is also the lexicographically greatest one, which is the one that signs by default. Old keys stay
in the directory (and in the JWKS) so tokens they signed keep verifying; remove a retired key only
after ACCESS_TOKEN_TTL_SECONDS have passed since the rotation.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SUFFIX = ".pem"


class KeyRotationError(RuntimeError):
    """The new key would not be the newest one (same second, or a clock behind the newest key)."""


def kid_for(now: datetime) -> str:
    return now.astimezone(UTC).strftime("k%Y%m%dT%H%M%SZ")


def key_files(directory: Path) -> dict[str, Path]:
    """`kid -> path` of every key file; other files (and unsafe names) are ignored."""
    if not directory.is_dir():
        return {}
    return {
        path.name.removesuffix(SUFFIX): path
        for path in directory.iterdir()
        if path.name.endswith(SUFFIX) and KID_PATTERN.match(path.name.removesuffix(SUFFIX))
    }


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600, never replacing an existing key, never half-written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.link(partial, path)  # fails if the kid exists, unlike rename
    finally:
        partial.unlink(missing_ok=True)


def generate_key(directory: Path, kid: str) -> Path:
    if not KID_PATTERN.match(kid):
        msg = f"invalid key id {kid!r}"
        raise ValueError(msg)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    path = directory / f"{kid}{SUFFIX}"
    _write_private(path, pem)
    return path


def rotate_key(directory: Path, *, now: datetime | None = None) -> str:
    """Write a new key that becomes the active one (unless JWT_ACTIVE_KID pins another)."""
    kid = kid_for(now or datetime.now(UTC))
    existing = key_files(directory)
    if existing and kid <= max(existing):
        msg = (
            f"new key {kid} would not be newer than {max(existing)}; "
            "rotate at most once per second, with a correct clock"
        )
        raise KeyRotationError(msg)
    generate_key(directory, kid)
    return kid


def ensure_key(directory: Path, *, now: datetime | None = None) -> str | None:
    """Create the first key if the directory holds none; the new kid, or None if keys exist."""
    if key_files(directory):
        return None
    return rotate_key(directory, now=now)
