"""Keys for the guard's secrets and pseudonymous identifiers.

Every secret the guard uses is derived from the one master secret with HKDF and a label of
its own, so a leaked device-cookie key says nothing about the token key. Identifiers that
go into Redis keys and events (accounts, patients, payers, devices) are replaced by a keyed
hash first: Redis never holds a raw identifier, and the hash still links repeat requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["GuardKeys", "b64url", "unb64url"]

_MEMO_MAX = 65_536


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(master: bytes, label: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()
    ).derive(master)


class GuardKeys:
    """The guard's derived keys. Labels are fixed: changing one invalidates what it signs."""

    def __init__(self, master: bytes) -> None:
        self.token = _derive(master, "fairslot/guard/action-token/v1")
        self.device = _derive(master, "fairslot/guard/device-cookie/v1")
        self.altcha = _derive(master, "fairslot/guard/altcha/v1").hex()
        self._pseudonym = _derive(master, "fairslot/guard/pseudonym/v1")
        # A booking check needs its account's pseudonym three times (limit, device set,
        # one-at-a-time slot) and a patient's requests repeat: remember recent ones.
        self._memo: dict[tuple[str, str], str] = {}

    def pseudonym(self, kind: str, value: str) -> str:
        """A stable 128-bit keyed hash of ``value`` in namespace ``kind``."""
        memo_key = (kind, value)
        known = self._memo.get(memo_key)
        if known is not None:
            return known
        mac = hmac.new(self._pseudonym, f"{kind}\x00{value}".encode(), hashlib.sha256)
        result = b64url(mac.digest()[:16])
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[memo_key] = result
        return result
