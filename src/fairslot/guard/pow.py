"""Proof of work: ALTCHA-compatible challenges that cost a browser a fraction of a second
and a bot farm real CPU for every request it wants served.

Challenges use the ALTCHA v1 format (SHA-256 of salt + number, HMAC-signed), so the
``altcha`` widget or our own solver (``/static/altcha-solver.js``) can solve them. The
salt carries, under the signature, the expiry, the action and a pseudonym of the account
the challenge was issued to: a solution is good for that account and action only, once,
until it expires. Salt and secret number come from the injected ``Randomness``; spent
solutions go to the ``TokenLedger``, so a restart does not make them usable again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, cast

from altcha.v1 import (
    ChallengeOptions,
    PayloadType,
    create_challenge,
    extract_params,
    verify_solution,
)

from fairslot.clock import Clock
from fairslot.guard.ledger import TokenLedger
from fairslot.randomness import Randomness

__all__ = ["ChallengeCheck", "Challenges"]


@dataclass(frozen=True, slots=True)
class ChallengeCheck:
    ok: bool
    reason: str
    """``ok``, ``challenge_invalid``, ``challenge_expired``, ``challenge_mismatch`` or
    ``challenge_replayed``."""


class Challenges:
    def __init__(self, hmac_key: str, ledger: TokenLedger, clock: Clock,
                 randomness: Randomness, *, ttl: float) -> None:
        self._key = hmac_key
        self._ledger = ledger
        self._clock = clock
        self._randomness = randomness
        self.ttl = ttl

    def issue(self, subject: str, action: str, max_number: int) -> dict[str, Any]:
        """A new challenge as the JSON object the ALTCHA widget and our solver expect."""
        expires = self._clock.now() + dt.timedelta(seconds=self.ttl)
        challenge = create_challenge(
            ChallengeOptions(
                hmac_key=self._key,
                max_number=max_number,
                salt=self._randomness.token_hex(12),
                number=self._randomness.randbelow(max_number + 1),
                expires=expires,
                params={"s": subject, "a": action},
            )
        )
        return dict(challenge.to_dict())

    async def redeem(self, payload: str | None, subject: str, action: str) -> ChallengeCheck:
        if not payload or len(payload) > 2048:
            return ChallengeCheck(False, "challenge_invalid")
        try:
            data = json.loads(base64.b64decode(payload, validate=True))
        except (ValueError, binascii.Error):
            return ChallengeCheck(False, "challenge_invalid")
        if not isinstance(data, dict) or not isinstance(data.get("salt"), str):
            return ChallengeCheck(False, "challenge_invalid")
        # Expiry is checked below against our clock, not the library's wall clock.
        payload_data = cast(PayloadType, data)
        ok, _ = verify_solution(payload_data, self._key, check_expires=False)
        if not ok:
            return ChallengeCheck(False, "challenge_invalid")
        params = extract_params(payload_data)
        try:
            expires = float(params["expires"][0])
        except (KeyError, IndexError, ValueError):
            return ChallengeCheck(False, "challenge_invalid")
        if expires < self._clock.now().timestamp():
            return ChallengeCheck(False, "challenge_expired")
        if params.get("s") != [subject] or params.get("a") != [action]:
            return ChallengeCheck(False, "challenge_mismatch")
        if not await self._ledger.spend("pow:" + str(data["signature"]), expires + 1):
            return ChallengeCheck(False, "challenge_replayed")
        return ChallengeCheck(True, "ok")
