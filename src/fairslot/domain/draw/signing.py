"""The hospital's draw key (Ed25519) and the canonical bytes it signs.

Every statement the hospital makes about a round (its opening, its frozen list, its result),
every receipt it gives a patient and every checkpoint of its log is a JSON object carrying
its own ``signature``: Ed25519 (RFC 8032), in lowercase hex, over the *canonical JSON* of
the object without the ``signature`` field.

Canonical JSON here: keys sorted, no whitespace, separators ``,`` and ``:``. Signed objects
hold only integers, ``null``, lists, objects and strings of printable ASCII without ``"``
or ``\\`` (the schemas enforce it), so no escaping ever happens and the result is also the
RFC 8785 (JCS) form: ``json.dumps(obj, sort_keys=True, separators=(",", ":"))`` in Python.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = ["DrawKey", "canonical_json", "digest", "verify_signed"]

_HEX_SIG = re.compile(r"[0-9a-f]{128}")
_HEX_KEY = re.compile(r"[0-9a-f]{64}")


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed and signed for a JSON value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def digest(value: Any) -> str:
    """Lowercase hex SHA-256 of a value's canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _unsigned(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "signature"}


class DrawKey:
    """The hospital's Ed25519 key for the draw. The private half comes from settings or a
    key file the operator keeps; ``public_hex`` is published in every round document."""

    def __init__(self, private: bytes) -> None:
        if len(private) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(private)
        self.public = self._key.public_key().public_bytes_raw()

    @property
    def public_hex(self) -> str:
        return self.public.hex()

    def sign(self, statement: Mapping[str, Any]) -> dict[str, Any]:
        """The statement with its ``signature`` added (any old one replaced)."""
        body = _unsigned(statement)
        return {**body, "signature": self._key.sign(canonical_json(body)).hex()}


def verify_signed(obj: Mapping[str, Any], public_hex: str) -> bool:
    """Whether ``obj["signature"]`` is ``public_hex``'s signature over the rest of ``obj``."""
    signature = obj.get("signature")
    if not isinstance(signature, str) or _HEX_SIG.fullmatch(signature) is None:
        return False
    if _HEX_KEY.fullmatch(public_hex) is None:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature), canonical_json(_unsigned(obj)))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
