"""Device identity: identifiers only the server mints.

A device id is a random value the server creates, signed together with the moment it was
minted (HMAC with the guard's device key): ``<id>.<minted, hex seconds>.<signature>``.
Browsers keep it in the first-party cookie ``fs_device`` (HttpOnly, SameSite=Lax,
``Secure`` when the request came over HTTPS); native apps read it from the response header
the server sends when it mints one (``X-Device-Id`` by default) and send it back in the
same header. Either way only a value carrying the server's signature is a device: an id a
client makes up means nothing, and such a request is treated as having no device at all
(which is a risk, and is counted by its IP prefix; see ``Guard``).

A device minted a short while ago (``guard_device_young_seconds``) is *new*: a client that
throws its cookie away and fetches a fresh one each time never gets past that, so it never
gets a device with a clean record.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fairslot.clock import Clock
from fairslot.guard.keys import b64url
from fairslot.randomness import Randomness

__all__ = ["COOKIE_NAME", "Device", "DeviceIds"]

COOKIE_NAME = "fs_device"
MAX_AGE = 400 * 24 * 3600
"""The longest cookie lifetime browsers honour; also how long a signed id is accepted."""


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    minted_at: int
    """Seconds since the epoch when the server minted it."""


class DeviceIds:
    def __init__(self, key: bytes, clock: Clock, randomness: Randomness, *,
                 young_seconds: float, secure: bool | None) -> None:
        self._key = key
        self._clock = clock
        self._randomness = randomness
        self.young_seconds = young_seconds
        self.secure = secure
        """``Secure`` on the cookie: always (True), never (False), or when the request
        came over HTTPS (None)."""

    def _sig(self, body: str) -> str:
        return b64url(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:12])

    def mint(self) -> tuple[Device, str]:
        """A new device and its signed value (cookie value and app header alike)."""
        minted = int(self._clock.now().timestamp())
        raw = b64url(self._randomness.token_bytes(15))
        body = f"{raw}.{minted:x}"
        return Device(raw, minted), f"{body}.{self._sig(body)}"

    def verify(self, value: str | None) -> Device | None:
        """The device a signed value names, or None if we did not sign it (or it is older
        than any cookie can be)."""
        if not value or len(value) > 64:
            return None
        parts = value.split(".")
        if len(parts) != 3:
            return None
        raw, minted_hex, sig = parts
        if not hmac.compare_digest(self._sig(f"{raw}.{minted_hex}").encode(), sig.encode()):
            return None
        try:
            minted = int(minted_hex, 16)
        except ValueError:
            return None
        if self._clock.now().timestamp() - minted > MAX_AGE:
            return None
        return Device(raw, minted)

    def is_young(self, device: Device) -> bool:
        return self._clock.now().timestamp() - device.minted_at < self.young_seconds

    def set_cookie(self, value: str, *, https: bool) -> str:
        """The ``Set-Cookie`` header value storing a device."""
        header = f"{COOKIE_NAME}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"
        if self.secure or (self.secure is None and https):
            header += "; Secure"
        return header
