"""Log-in throttling: guessing passwords is slow and costly, and nobody can lock a patient
out by failing on purpose.

The log-in service calls three methods around its password check::

    attempt = await guard.login.before_attempt(username, requester, pow_payload=...)
    ...                                    # check the password
    await guard.login.after_success(attempt)   # or after_failure(attempt)

``before_attempt`` raises ``RateLimited`` (429, ``rate_limited`` or ``login_backoff``),
``ChallengeRequired`` (403, a proof of work to solve and send again), ``Blocked`` or
``Overloaded``; it counts the attempt whether the password turns out right or wrong.

What it enforces, in this order:

1. **Back-off per account.** After ``guard_login_backoff_after`` failures in a row, each
   further attempt waits ``guard_login_backoff_base_seconds``, doubling per failure, up to
   ``guard_login_backoff_max_seconds``.
2. **Limits** of the ``login`` group: per address, per /24 (/48), per device (requests
   without a device share their prefix's bucket) and per account
   (``FAIRSLOT_LOGIN_ATTEMPTS_PER_MINUTE`` a minute and 50 a day).
3. **Proof of work** from the ``guard_login_free_failures``-th failure in a row on, before
   any back-off: each attempt solves a challenge whose difficulty doubles per further
   failure; and whenever the group's level asks for one (``elevated``: risky requesters,
   e.g. without a device; ``under_attack``: everyone).

Failures count per *scope*: an account tried from devices that never signed in to it, or an
account on one device that has (a signed device id, remembered for
``guard_login_known_device_days`` after each success). An attacker failing on purpose, from
anywhere else, raises the cost and the wait of the first scope only: the patient's own
browser or app keeps its own count, its own limits, and signs in as usual. Failures are
forgotten ``guard_login_failure_memory_seconds`` after the last one, and a success clears
its scope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fairslot.guard.errors import RateLimited
from fairslot.guard.limiter import key_values
from fairslot.guard.policy import LEVEL_RULES, KeyKind, RouteGroup
from fairslot.guard.requester import Requester

if TYPE_CHECKING:
    from fairslot.guard.service import Guard

__all__ = ["LoginAttempt", "LoginThrottle", "normalise_username"]


def normalise_username(username: str) -> str:
    """How the platform compares user names (see services.accounts)."""
    return username.strip().lower()


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """An attempt ``before_attempt`` let through; hand it back with the outcome."""

    scope: str
    """Where its failures count: the account, or the account on a known device."""
    pair: str | None
    """The (account, device) pair a success makes known, or None without a device."""
    failures: int
    """Failures in a row of its scope before this attempt."""
    known_device: bool


class LoginThrottle:
    def __init__(self, guard: Guard) -> None:
        settings = guard.settings
        if settings.guard_login_backoff_after <= settings.guard_login_free_failures:
            raise ValueError(
                "FAIRSLOT_GUARD_LOGIN_BACKOFF_AFTER must be greater than "
                "FAIRSLOT_GUARD_LOGIN_FREE_FAILURES: a proof of work comes before any wait")
        self._guard = guard
        self.free_failures = settings.guard_login_free_failures
        self.backoff_after = settings.guard_login_backoff_after
        self.backoff_base = settings.guard_login_backoff_base_seconds
        self.backoff_max = settings.guard_login_backoff_max_seconds
        self.failure_memory = settings.guard_login_failure_memory_seconds
        self.known_for = settings.guard_login_known_device_days * 86400.0

    def backoff(self, failures: int) -> float:
        """Seconds an attempt must wait after the latest of ``failures`` failures."""
        if failures < self.backoff_after:
            return 0.0
        return min(self.backoff_base * 2.0 ** (failures - self.backoff_after),
                   self.backoff_max)

    async def before_attempt(self, username: str, who: Requester, *,
                             pow_payload: str | None = None) -> LoginAttempt:
        """Let a log-in attempt go on to the password check, or raise."""
        guard = self._guard
        group = RouteGroup.LOGIN
        policy = guard.policies[group]
        account = guard.keys.pseudonym("login", normalise_username(username))
        level = await guard.level(group)
        report = guard.reporter(group, level, who, None)
        guard.shed(policy, report)
        values = key_values(guard.keys, who.client_ip, who.device_id, None, None, None)
        await guard.decisions.refresh()
        raised, force_pow, _ = guard.enforce_decisions(group, level, who, None, values)
        if raised is not level:
            level, report = raised, guard.reporter(group, raised, who, None)

        pair = f"{account}:{who.device_id}" if who.device_id else None
        record = await guard.state.login_record(account, pair)
        scope = pair if record.known_device and pair else account
        now = guard.clock.now().timestamp()
        failures = record.failures if now - record.last_failure <= self.failure_memory else 0
        wait = record.last_failure + self.backoff(failures) - now
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            report("deny", "login_backoff", key="account", key_hash=scope[:22])
            raise RateLimited(
                "Too many failed log-ins for this account; please wait before trying again.",
                retry_after=retry_after, headers={}, code="login_backoff")

        values[KeyKind.ACCOUNT] = scope
        await guard.limits.admit(group, policy, LEVEL_RULES[level].cost, values, report)

        failing = failures >= self.free_failures
        risk = guard.risk(who, None, 0)
        if failing:
            risk += failures - self.free_failures + 1
        await guard.require_pow(group, level, account, group.value, pow_payload, risk, report,
                                force=force_pow or failing)
        guard.count_allow(group, level, risk, report)
        return LoginAttempt(scope, pair, failures, record.known_device)

    async def after_failure(self, attempt: LoginAttempt) -> None:
        """The password was wrong (or the account unknown or disabled)."""
        await self._guard.state.login_failed(attempt.scope, self.failure_memory)

    async def after_success(self, attempt: LoginAttempt) -> None:
        """The password was right: its scope starts again from zero, and the device (if
        any) is known for this account from now on."""
        await self._guard.state.login_succeeded(attempt.scope, attempt.pair, self.known_for)
