"""The ``Guard``: one object, built from settings, that decides whether a request goes on.

A decision runs in a fixed order, cheapest and most general first: load shedding, rate
limits on every key the request has (all hit in one concurrent round trip to Redis),
the requester's risk (new device, device shared by many accounts), a proof of work when the
group's level or that risk asks for one, and the single-use action token when the route
needs one. The first refusal raises a typed error (``fairslot.guard.errors``) and is
reported to the event sink; so is every allow, in aggregate.

Nothing here knows about a web framework except ``check``, which reads the few request
attributes the middleware set (``fairslot.guard.fastapi``); ``decide`` is the same check
for any caller that has a ``Requester``.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import limits

from fairslot.clock import Clock, SystemClock
from fairslot.config import Settings
from fairslot.guard.client_ip import address_key, parse_networks, prefix_key, resolve_client_ip
from fairslot.guard.device import DeviceIds
from fairslot.guard.errors import (
    ActionTokenRefused,
    BookingInProgress,
    ChallengeRequired,
    Overloaded,
    RateLimited,
)
from fairslot.guard.events import Decision, GuardEvent, GuardEventSink, NullSink, emit_safely
from fairslot.guard.keys import GuardKeys
from fairslot.guard.local_windows import LocalWindows
from fairslot.guard.policy import (
    LEVEL_RULES,
    GroupPolicy,
    GuardLevel,
    KeyKind,
    PowMode,
    RouteGroup,
    build_policies,
)
from fairslot.guard.pow import Challenges
from fairslot.guard.storage import SharedState
from fairslot.guard.tokens import ActionTokens

__all__ = ["POW_HEADER", "TOKEN_HEADER", "Guard", "GuardPass", "LoadShedder", "Requester"]

TOKEN_HEADER = "x-fairslot-action-token"  # noqa: S105 - a header name
POW_HEADER = "x-fairslot-pow"

_LEVEL_CACHE_SECONDS = 1.0
_DEVICE_SEEN_SECONDS = 60.0
_DEVICE_SEEN_MAX = 50_000
_DENY_CACHE_MAX = 50_000
_DEVICE_SET_TTL = 30 * 24 * 3600
# Groups counted in the worker and shared in the background (see local_windows.py).
_LOCAL_GROUPS = frozenset({RouteGroup.BROWSING})


@dataclass(frozen=True, slots=True)
class Requester:
    """What the middleware learned about a request before any route ran."""

    client_ip: str
    device_id: str | None = None
    device_new: bool = False
    device_claimed: bool = False


@dataclass(frozen=True, slots=True)
class GuardPass:
    """An allowed request: what the guard knew when it let it through."""

    group: RouteGroup
    level: GuardLevel
    risk: int
    client_ip: str
    device_accounts: int | None
    hold: tuple[str, str, bool] | None = None
    """The account's one-at-a-time slot (name, owner, on Redis) while ``exclusive``; give
    it back with ``Guard.release``."""


class _RequestLike(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def state(self) -> Any: ...


class LoadShedder:
    """Counts this worker's in-flight requests and refuses the least important groups first.

    Per worker, on purpose: overload is a property of the process that is drowning, and
    counting locally costs nothing on the hot path.
    """

    def __init__(self, thresholds: tuple[int, int, int]) -> None:
        self.thresholds = thresholds
        self.in_flight = 0
        self.shed_count = 0

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    def should_shed(self, tier: int) -> bool:
        return self.in_flight > self.thresholds[tier]

    @property
    def loaded(self) -> bool:
        """Past the first threshold: browsing is being shed, challenges get harder."""
        return self.in_flight > self.thresholds[0]


class Guard:
    """Request guard built from ``Settings``. One per application process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sink: GuardEventSink | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.sink: GuardEventSink = sink if sink is not None else NullSink()
        self.keys = GuardKeys(settings.secret_bytes())
        self.trusted = parse_networks(settings.trusted_proxies)
        self.policies: dict[RouteGroup, GroupPolicy] = build_policies(settings.guard_limits)
        self.state = SharedState(
            settings.redis_url, settings.guard_redis_prefix, settings.guard_redis_retry_seconds
        )
        self.tokens = ActionTokens(
            self.keys.token,
            self.state,
            self.clock,
            min_age=settings.guard_token_min_age_seconds,
            ttl=settings.guard_token_ttl_seconds,
        )
        self.challenges = Challenges(
            self.keys.altcha, self.state, self.clock, ttl=settings.guard_challenge_ttl_seconds
        )
        sync = settings.guard_browsing_sync_seconds
        self.local_windows = (
            LocalWindows(self.state, secrets.token_hex(6), sync) if sync > 0 else None
        )
        self.devices = DeviceIds(self.keys.device, secure=settings.guard_device_cookie_secure)
        self.device_header = settings.guard_device_header.lower()
        self.shedder = LoadShedder(
            (
                settings.guard_shed_browsing_at,
                settings.guard_shed_other_at,
                settings.guard_shed_critical_at,
            )
        )
        self._default_level = GuardLevel(settings.guard_default_level)
        self._levels: dict[str, str] = {}
        self._levels_read = -math.inf
        self._parsed_levels: dict[RouteGroup, GuardLevel] | None = None
        # (key, id of the policy's limit item) -> (refuse until, reset at, remaining). Items
        # live as long as the guard's policies, so their ids are stable.
        self._deny_cache: OrderedDict[tuple[str, int], tuple[float, float, int]] = OrderedDict()
        self._device_seen: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._allows: dict[RouteGroup, int] = {}
        self._sink_state: dict[str, bool] = {}

    # -- identity of the requester -------------------------------------------------------

    def client_ip(self, peer: str | None, forwarded_for: list[str]) -> str:
        return resolve_client_ip(peer, forwarded_for, self.trusted)

    # -- levels ---------------------------------------------------------------------------

    async def levels(self) -> dict[RouteGroup, GuardLevel]:
        """The level of every group (cached for a second, so all workers agree within one)."""
        now = time.monotonic()
        if now - self._levels_read > _LEVEL_CACHE_SECONDS:
            self._levels = await self.state.get_levels()
            self._levels_read = now
            self._parsed_levels = None
        if self._parsed_levels is None:
            parsed: dict[RouteGroup, GuardLevel] = {}
            for group in RouteGroup:
                try:
                    parsed[group] = GuardLevel(self._levels.get(group.value, self._default_level))
                except ValueError:
                    parsed[group] = self._default_level
            self._parsed_levels = parsed
        return self._parsed_levels

    async def level(self, group: RouteGroup | str) -> GuardLevel:
        return (await self.levels())[RouteGroup(group)]

    async def set_level(self, group: RouteGroup | str, level: GuardLevel | str) -> bool:
        """Switch a group's level. True when stored in Redis (every worker follows within a
        second); False when only this process holds it (no Redis, or Redis down)."""
        group, level = RouteGroup(group), GuardLevel(level)
        shared = await self.state.set_level(group.value, level.value)
        self._levels[group.value] = level.value
        self._levels_read = time.monotonic()
        self._parsed_levels = None
        return shared

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, str]:
        """For ``/readyz``: the guard's storage as last seen by a request."""
        if not self.state.configured:
            return {"redis": "not configured", "guard": "ok: per-process limits"}
        if self.state.degraded:
            return {"redis": "down", "guard": "degraded: per-process limits"}
        return {"redis": "up", "guard": "ok"}

    async def probe(self) -> dict[str, str]:
        """Like ``health`` but tries Redis now."""
        if self.state.configured:
            await self.state.ping()
        return self.health()

    async def status(self) -> dict[str, Any]:
        return {
            **self.health(),
            "levels": {g.value: lv.value for g, lv in (await self.levels()).items()},
            "in_flight": self.shedder.in_flight,
        }

    async def close(self) -> None:
        if self.local_windows is not None:
            await self.local_windows.close()
        await self.state.close()

    # -- tokens and challenges for the pages ----------------------------------------------

    def issue_token(self, account_id: str, action: str, target: str = "") -> str:
        """An action token for the screen that leads to ``action`` on ``target``."""
        return self.tokens.issue(account_id, action, target)

    def _subject(self, account_id: str | None) -> str:
        return self.keys.pseudonym("account", account_id) if account_id else "-"

    async def new_challenge(
        self, group: RouteGroup | str, *, account_id: str | None = None,
        action: str | None = None, risk: int = 0,
    ) -> dict[str, Any]:
        """A challenge a page can embed ahead of time, at the group's current difficulty.
        ``action`` defaults to the group; use the ``need_token`` action name for routes
        that take a token, since that is what ``check`` binds the solution to."""
        level = await self.level(group)
        return self.challenges.issue(
            self._subject(account_id), action or RouteGroup(group).value,
            self._difficulty(level, risk),
        )

    def _difficulty(self, level: GuardLevel, risk: int) -> int:
        factor = LEVEL_RULES[level].difficulty_factor * (1 << min(max(risk, 0), 4))
        if self.shedder.loaded:
            factor *= 2
        return min(
            self.settings.guard_pow_base_maxnumber * factor, self.settings.guard_pow_max_maxnumber
        )

    # -- the decision ---------------------------------------------------------------------

    def requester(self, request: _RequestLike) -> Requester:
        state = request.state
        client_ip = getattr(state, "client_ip", None)
        if client_ip is None:
            raise RuntimeError("GuardMiddleware is not installed on this application")
        return Requester(
            client_ip=client_ip,
            device_id=getattr(state, "device_id", None),
            device_new=bool(getattr(state, "device_new", False)),
            device_claimed=bool(getattr(state, "device_claimed", False)),
        )

    async def check(
        self,
        request: _RequestLike,
        group: RouteGroup | str,
        *,
        account_id: str | None = None,
        patient_id: str | None = None,
        payer: str | None = None,
        need_token: str | None = None,
        target: str | None = None,
        token: str | None = None,
        pow_payload: str | None = None,
        risk: int = 0,
        exclusive: bool = False,
    ) -> GuardPass:
        """Check a request that went through ``GuardMiddleware``. The action token and the
        proof-of-work solution are read from the ``X-Fairslot-Action-Token`` and
        ``X-Fairslot-Pow`` headers unless passed (e.g. from form fields)."""
        headers = request.headers
        return await self.decide(
            self.requester(request),
            group,
            account_id=account_id,
            patient_id=patient_id,
            payer=payer,
            need_token=need_token,
            target=target,
            token=token if token is not None else headers.get(TOKEN_HEADER),
            pow_payload=pow_payload if pow_payload is not None else headers.get(POW_HEADER),
            risk=risk,
            exclusive=exclusive,
        )

    async def decide(
        self,
        who: Requester,
        group: RouteGroup | str,
        *,
        account_id: str | None = None,
        patient_id: str | None = None,
        payer: str | None = None,
        need_token: str | None = None,
        target: str | None = None,
        token: str | None = None,
        pow_payload: str | None = None,
        risk: int = 0,
        exclusive: bool = False,
    ) -> GuardPass:
        """The decision for a requester. With ``exclusive`` (and an account) the account's
        one-at-a-time slot for the group is taken in the same round trip as the limits and
        must be released with ``release`` when the request is done."""
        group = RouteGroup(group)
        policy = self.policies[group]
        level = await self.level(group)
        rule = LEVEL_RULES[level]

        def report(decision: Decision, reason: str, **fields: Any) -> None:
            emit_safely(
                self.sink,
                GuardEvent(
                    at=self.clock.now(),
                    decision=decision,
                    reason=reason,
                    group=group.value,
                    level=level.value,
                    client_ip=who.client_ip,
                    account_id=account_id,
                    device_id=who.device_id,
                    degraded=self.state.degraded,
                    **fields,
                ),
                self._sink_state,
            )

        if self.shedder.should_shed(policy.shed_tier):
            self.shedder.shed_count += 1
            report("deny", "overloaded")
            raise Overloaded(
                "The service is busy; please try again in a few seconds.", retry_after=2
            )

        device_accounts, hold = await self._check_limits(
            group, policy, rule.cost, who, account_id, patient_id, payer, report,
            exclusive=exclusive,
        )
        try:
            risk = self._risk(who, device_accounts, risk)
            await self._verify(group, policy, rule.pow, level, account_id, need_token, target,
                               token, pow_payload, risk, report)
        except BaseException:
            if hold is not None:
                await self.state.release(*hold)
            raise
        self._count_allow(group, level, report, risk)
        return GuardPass(group, level, risk, who.client_ip, device_accounts, hold)

    async def release(self, passed: GuardPass) -> None:
        """Give back the one-at-a-time slot an ``exclusive`` check took."""
        if passed.hold is not None:
            await self.state.release(*passed.hold)

    def _risk(self, who: Requester, device_accounts: int | None, risk: int) -> int:
        if who.device_new:
            risk += 1
        if device_accounts is not None:
            threshold = self.settings.guard_device_accounts_risky
            if device_accounts > threshold:
                risk += 1 if device_accounts <= 2 * threshold else 2
        return risk

    async def _verify(
        self, group: RouteGroup, policy: GroupPolicy, pow_mode: PowMode, level: GuardLevel,
        account_id: str | None, need_token: str | None, target: str | None,
        token: str | None, pow_payload: str | None, risk: int, report: Any,
    ) -> None:
        """Proof of work (when the level or the risk asks for it), then the action token."""
        needs_pow = policy.challengeable and (
            pow_mode is PowMode.ALWAYS or (pow_mode is PowMode.RISKY and risk >= 1)
        )
        if needs_pow:
            subject = self._subject(account_id)
            action = need_token or group.value
            result = await self.challenges.redeem(pow_payload, subject, action)
            if not result.ok:
                reason = "challenge_required" if not pow_payload else result.reason
                report("challenge", reason, risk=risk)
                challenge = self.challenges.issue(subject, action, self._difficulty(level, risk))
                raise ChallengeRequired(
                    "Please wait while your browser completes a short check.",
                    challenge=challenge,
                )

        if need_token is not None:
            checked = await self.tokens.redeem(token, account_id or "-", need_token,
                                               target or "")
            if not checked.ok:
                report("deny", checked.reason, risk=risk)
                raise ActionTokenRefused(_TOKEN_DETAIL[checked.reason], code=checked.reason)

    async def _check_limits(
        self,
        group: RouteGroup,
        policy: GroupPolicy,
        cost: int,
        who: Requester,
        account_id: str | None,
        patient_id: str | None,
        payer: str | None,
        report: Any,
        *,
        exclusive: bool = False,
    ) -> tuple[int | None, tuple[str, str, bool] | None]:
        """Admit the request against every limit that applies, or raise ``RateLimited``
        for the first one used up (consuming none). In the same round trip: count the
        device's accounts and, with ``exclusive``, take the account's slot."""
        values: dict[KeyKind, str | None] = {
            KeyKind.IP: address_key(who.client_ip),
            KeyKind.PREFIX: prefix_key(who.client_ip),
            KeyKind.DEVICE: who.device_id,
            KeyKind.ACCOUNT: account_id and self.keys.pseudonym("account", account_id),
            KeyKind.PATIENT: patient_id and self.keys.pseudonym("patient", patient_id),
            KeyKind.PAYER: payer and self.keys.pseudonym("payer", payer),
        }
        now = time.time()
        hits: list[tuple[limits.RateLimitItem, str, int]] = []
        kinds: list[KeyKind] = []
        for kind, item in policy.limits:
            value = values[kind]
            if not value:
                continue
            key = f"{group.value}/{kind.value}/{value}"
            cached = self._deny_cache.get((key, id(item)))
            if cached is not None and cached[0] > now:
                # Seen over this limit a moment ago: refuse without another round trip, so
                # a flood costs Redis nothing beyond its first refusals.
                self._refuse(kind, item, value, cached[1], cached[2], cost, report)
            hits.append((item, key, min(cost, item.amount)))
            kinds.append(kind)
        member, device_accounts = self._device_member(who.device_id, account_id)
        slot: tuple[str, str, float] | None = None
        if exclusive and account_id:
            slot = (self._slot_name(group, account_id), secrets.token_hex(8),
                    self.settings.guard_exclusive_seconds)
        if not hits and member is None and slot is None:
            return device_accounts, None
        if self.local_windows is not None and group in _LOCAL_GROUPS and member is None \
                and slot is None:
            refused = self.local_windows.admit(hits)
            if refused is not None:
                item, key, _ = hits[refused]
                remaining, reset_at = self.local_windows.remaining(item, key)
                self._refuse(kinds[refused], item, values[kinds[refused]] or "",
                             max(reset_at, now + 1), remaining, cost, report)
            return device_accounts, None
        admission = await self.state.admit(hits, member, slot)
        if admission.refused is not None:
            item, key, _ = hits[admission.refused]
            kind = kinds[admission.refused]
            window = await self.state.window(item, key)
            reset_at = max(window.reset_at, now + 1)
            cache_for = self.settings.guard_deny_cache_seconds
            if cache_for > 0:
                self._remember_denial((key, id(item)), min(now + cache_for, reset_at),
                                      reset_at, window.remaining)
            self._refuse(kind, item, values[kind] or "", reset_at, window.remaining, cost,
                         report)
        if admission.device_accounts is not None and who.device_id and account_id:
            device_accounts = self._remember_device(who.device_id, account_id,
                                                    admission.device_accounts)
        if admission.busy:
            report("deny", "busy")
            raise BookingInProgress(
                "Your previous request is still being processed; please wait for it."
            )
        hold = (slot[0], slot[1], admission.on_redis) if slot is not None else None
        return device_accounts, hold

    def _slot_name(self, group: RouteGroup, account_id: str) -> str:
        return f"{group.value}:{self.keys.pseudonym('account', account_id)}"

    def _remember_denial(
        self, key: tuple[str, int], until: float, reset_at: float, remaining: int
    ) -> None:
        self._deny_cache[key] = (until, reset_at, remaining)
        self._deny_cache.move_to_end(key)
        while len(self._deny_cache) > _DENY_CACHE_MAX:
            self._deny_cache.popitem(last=False)

    def _refuse(self, kind: KeyKind, item: limits.RateLimitItem, value: str, reset_at: float,
                remaining: int, cost: int, report: Any) -> None:
        retry_after = max(1, math.ceil(reset_at - time.time()))
        limit_text = f"{item.amount} per {item.multiples} {item.GRANULARITY.name}"
        key_hash = value if kind in (KeyKind.IP, KeyKind.PREFIX) else value[:22]
        report("deny", "rate_limited", key=kind.value, key_hash=key_hash, limit=limit_text)
        raise RateLimited(
            "Too many requests; please wait a moment before trying again.",
            retry_after=retry_after,
            headers={
                "RateLimit-Limit": str(item.amount // cost or 1),
                "RateLimit-Remaining": str(max(0, remaining) // cost),
                "RateLimit-Reset": str(retry_after),
            },
            limit=limit_text,
            key=kind.value,
        )

    def _device_member(
        self, device_id: str | None, account_id: str | None
    ) -> tuple[tuple[str, str, float] | None, int | None]:
        """What to add to the device's account set, unless this pair was counted within the
        last minute (then the remembered count, and no Redis work)."""
        if not device_id or not account_id:
            return None, None
        seen = self._device_seen.get((device_id, account_id))
        if seen is not None and seen[0] > time.monotonic():
            return None, seen[1]
        member = self.keys.pseudonym("account", account_id)
        return ("dev:" + device_id, member, _DEVICE_SET_TTL), None

    def _remember_device(self, device_id: str, account_id: str, count: int) -> int:
        pair = (device_id, account_id)
        self._device_seen[pair] = (time.monotonic() + _DEVICE_SEEN_SECONDS, count)
        self._device_seen.move_to_end(pair)
        while len(self._device_seen) > _DEVICE_SEEN_MAX:
            self._device_seen.popitem(last=False)
        return count

    def _count_allow(self, group: RouteGroup, level: GuardLevel, report: Any, risk: int) -> None:
        every = self.settings.guard_allow_event_every
        if every <= 1:
            report("allow", "ok", risk=risk)
            return
        count = self._allows.get(group, 0) + 1
        if count >= every:
            count = 0
            emit_safely(
                self.sink,
                GuardEvent(
                    at=self.clock.now(),
                    decision="allow",
                    reason="ok",
                    group=group.value,
                    level=level.value,
                    client_ip="*",
                    degraded=self.state.degraded,
                    count=every,
                ),
                self._sink_state,
            )
        self._allows[group] = count

    # -- one booking at a time per account ------------------------------------------------

    @contextlib.asynccontextmanager
    async def exclusive(
        self, account_id: str, group: RouteGroup | str = RouteGroup.BOOKING,
        *, client_ip: str = "", device_id: str | None = None,
    ) -> AsyncIterator[None]:
        """Hold the account's one in-flight slot for ``group`` while the body runs; a second
        concurrent request of the same account is refused with ``BookingInProgress``."""
        group = RouteGroup(group)
        owner = secrets.token_hex(8)
        name = self._slot_name(group, account_id)
        taken, on_redis = await self.state.acquire(
            name, owner, self.settings.guard_exclusive_seconds
        )
        if not taken:
            level = await self.level(group)
            emit_safely(
                self.sink,
                GuardEvent(
                    at=self.clock.now(), decision="deny", reason="busy", group=group.value,
                    level=level.value, client_ip=client_ip, account_id=account_id,
                    device_id=device_id, degraded=self.state.degraded,
                ),
                self._sink_state,
            )
            raise BookingInProgress(
                "Your previous request is still being processed; please wait for it."
            )
        try:
            yield
        finally:
            await self.state.release(name, owner, on_redis)


_TOKEN_DETAIL = {
    "token_missing": "This action must be started from its page; please go back and retry.",
    "token_invalid": "This page has expired or is not for this action; please reload it.",
    "token_replayed": "This page was already used; please reload it to try again.",
    "token_too_early": "Please take a moment to check the details, then confirm again.",
    "token_expired": "This page has expired; please reload it.",
}
