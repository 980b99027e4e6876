"""Keys derived from the one master secret, and what fairslot does with them.

PII (ID numbers, names, phones, payer accounts) is encrypted at rest with AES-256-GCM under a
random 96-bit nonce. Equality look-ups and uniqueness use a keyed blind index (HMAC-SHA-256
under a separate key), so the database never needs the clear value to find a patient."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Keyring", "new_secret"]

_VERSION = b"\x01"


def new_secret() -> str:
    """A fresh master secret, URL-safe text of 256 random bits."""
    return secrets.token_urlsafe(32)


def _derive(master: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"fairslot/{label}".encode()).derive(master)


class Keyring:
    def __init__(self, master: bytes) -> None:
        self._master = master
        self._aead = AESGCM(_derive(master, "pii-encryption/v1"))
        self._index_key = _derive(master, "blind-index/v1")
        self._derived: dict[str, bytes] = {}

    def derive(self, label: str) -> bytes:
        """A 32-byte key for one purpose (token signing, cookies, pseudonyms...), derived
        once per label: every API request checks its log-in token's MAC with one, twice
        for a booking, and an HKDF each time was 1 % of a booking's server CPU."""
        key = self._derived.get(label)
        if key is None:
            key = self._derived[label] = _derive(self._master, label)
        return key

    def encrypt(self, clear: str, *, context: str) -> bytes:
        # The context (e.g. the column name) is bound as associated data, so a ciphertext
        # copied from one column to another fails to decrypt instead of leaking.
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, clear.encode(), context.encode())

    def decrypt(self, blob: bytes, *, context: str) -> str:
        if not blob or blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], context.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("ciphertext does not decrypt under this key") from exc

    def blind_index(self, kind: str, value: str) -> str:
        mac = hmac.new(self._index_key, f"{kind}\x00{value}".encode(), hashlib.sha256)
        return base64.b32encode(mac.digest()[:20]).decode().rstrip("=").lower()

    def pseudonym(self, kind: str, value: str) -> str:
        """A stable opaque identifier for exports: ``h:`` and 24 hex characters."""
        key = self.derive("export-pseudonym/v1")
        return "h:" + hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:24]
