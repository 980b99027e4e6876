"""The hospital's seed and its commitment: 32 secret bytes drawn when a round opens, and
the SHA-256 published at once, so the seed is fixed before anyone enters."""

from __future__ import annotations

import hashlib
import secrets

from fairslot.domain.errors import InvalidInput

__all__ = [
    "SEED_BYTES",
    "commitment",
    "new_seed",
    "round_key",
]


SEED_BYTES = 32
_sha256 = hashlib.sha256


def new_seed() -> bytes:
    """A fresh 32-byte seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """The published commitment to a seed: lowercase hex SHA-256 of its 32 bytes.

    A 256-bit random seed cannot be guessed from its hash, so publishing the commitment when
    the window opens binds the operator to the seed without revealing it."""
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"a seed is {SEED_BYTES} bytes, got {len(seed)}", code="bad_seed")
    return _sha256(seed).hexdigest()


def round_key(seed: bytes, beacon: str = "") -> bytes:
    """The 32-byte key that every entry's draw key is derived from: SHA-256(seed ‖ beacon).

    The seed has a fixed length, so the concatenation with the UTF-8 beacon is unambiguous."""
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"a seed is {SEED_BYTES} bytes, got {len(seed)}", code="bad_seed")
    return _sha256(seed + beacon.encode("utf-8")).digest()
