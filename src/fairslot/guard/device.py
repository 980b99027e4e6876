"""Device identity: a signed first-party cookie, or an id the mobile app sends.

The cookie (``fs_device``) holds a random id and its HMAC, so the server knows it issued
the id; it is HttpOnly and SameSite=Lax, and is set on the first response that lacks one.
Apps without a cookie jar send their own id in a header; that is accepted as a key but
marked ``claimed``, because nothing stops a bot from inventing a new one per request.
Either way the id is hashed before it is used as a key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fairslot.guard.keys import b64url

__all__ = ["COOKIE_NAME", "DeviceId", "DeviceIds"]

COOKIE_NAME = "fs_device"
_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers honour


@dataclass(frozen=True, slots=True)
class DeviceId:
    id: str
    new: bool
    """Issued on this request: the client brought no (valid) cookie."""
    claimed: bool
    """Came from the app's header, not from a cookie we signed."""


class DeviceIds:
    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._key = key
        self._secure = secure

    def _sig(self, raw: str) -> str:
        return b64url(hmac.new(self._key, raw.encode(), hashlib.sha256).digest()[:12])

    def from_cookie(self, value: str | None) -> str | None:
        """The device id in a cookie value, if we signed it."""
        if not value or len(value) > 64 or "." not in value:
            return None
        raw, sig = value.split(".", 1)
        if hmac.compare_digest(self._sig(raw), sig):
            return raw
        return None

    def from_header(self, value: str | None) -> str | None:
        """A client-claimed id, reduced to a fixed-size key."""
        if not value or len(value) > 256:
            return None
        digest = hmac.new(self._key, b"app\x00" + value.encode(), hashlib.sha256).digest()
        return "app-" + b64url(digest[:15])

    def new(self) -> tuple[str, str]:
        """A fresh id and the ``Set-Cookie`` header value that stores it."""
        raw = b64url(secrets.token_bytes(15))
        value = f"{raw}.{self._sig(raw)}"
        attributes = f"{COOKIE_NAME}={value}; Path=/; Max-Age={_MAX_AGE}; HttpOnly; SameSite=Lax"
        if self._secure:
            attributes += "; Secure"
        return raw, attributes
