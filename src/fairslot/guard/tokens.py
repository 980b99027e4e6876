"""Single-use action tokens: proof that a request came through the screen that leads to it.

The page or app screen before an action (the slot's detail page before "book", the order
page before "pay") asks for a token bound to the account, the action and its target. The
action accepts it once, and not sooner than ``guard_token_min_age_seconds`` after it was
issued: a person reads the screen for longer than that, while an API bot that skips the
screens has no token, and one that fetches a token and fires at once is refused as too
early. Tokens are HMAC-signed (no server state until spent); spent tokens are remembered
in the ``TokenLedger`` until they would have expired anyway, which survives a restart.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fairslot.clock import Clock
from fairslot.guard.keys import b64url, unb64url
from fairslot.guard.ledger import TokenLedger
from fairslot.randomness import Randomness

__all__ = ["ActionTokens", "TokenCheck"]

_VERSION = "1"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    ok: bool
    reason: str
    """``ok`` or one of the ``token_*`` refusal codes."""
    age: float | None = None
    """Seconds from the token's issue (its screen) to this use, once it verified."""


class ActionTokens:
    def __init__(self, key: bytes, ledger: TokenLedger, clock: Clock, randomness: Randomness,
                 *, min_age: float, ttl: float) -> None:
        self._key = key
        self._ledger = ledger
        self._clock = clock
        self._randomness = randomness
        self.min_age = min_age
        self.ttl = ttl

    def _mac(self, body: str) -> str:
        return b64url(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:18])

    def issue(self, account_id: str, action: str, target: str) -> str:
        issued_ms = int(self._clock.now().timestamp() * 1000)
        nonce = b64url(self._randomness.token_bytes(12))
        # Account, action and target are signed but not written into the token: the
        # verifier knows them from the request, and the token stays opaque.
        body = f"{_VERSION}.{issued_ms}.{nonce}"
        mac = self._mac(f"{body}|{account_id}|{action}|{target}")
        return f"{body}.{mac}"

    async def redeem(self, token: str | None, account_id: str, action: str,
                     target: str) -> TokenCheck:
        checked, spend = self.check(token, account_id, action, target)
        if spend is None:
            return checked
        return await self.spend(*spend, age=checked.age)

    async def spend(self, name: str, expires_at: float, *,
                    age: float | None = None) -> TokenCheck:
        """Spend a token ``check`` let through, in the ledger."""
        if not await self._ledger.spend(name, expires_at):
            return TokenCheck(False, "token_replayed", age)
        return TokenCheck(True, "ok", age)

    def check(self, token: str | None, account_id: str, action: str, target: str
              ) -> tuple[TokenCheck, tuple[str, float] | None]:
        """Everything but the spend: the refusal, or the ledger name and the time until
        which it must stay spent (``spend``, or the same spend done elsewhere)."""
        if not token:
            return TokenCheck(False, "token_missing"), None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or len(token) > 200:
            return TokenCheck(False, "token_invalid"), None
        version, issued_text, nonce, mac = parts
        body = f"{version}.{issued_text}.{nonce}"
        expected = self._mac(f"{body}|{account_id}|{action}|{target}")
        if not hmac.compare_digest(expected.encode(), mac.encode()):  # bytes: any text
            return TokenCheck(False, "token_invalid"), None
        try:
            unb64url(nonce)
            issued = int(issued_text) / 1000
        except ValueError:
            return TokenCheck(False, "token_invalid"), None
        age = self._clock.now().timestamp() - issued
        if age > self.ttl:
            return TokenCheck(False, "token_expired", age), None
        if age < self.min_age:
            # Not spent: a person who double-clicks can still use it a moment later.
            return TokenCheck(False, "token_too_early", age), None
        return TokenCheck(True, "ok", age), ("tok:" + nonce, issued + self.ttl + 1)
