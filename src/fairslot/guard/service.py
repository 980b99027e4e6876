"""The ``Guard``: one object, built from settings, that decides whether a request goes on.

A decision runs in a fixed order, cheapest and most general first: load shedding, the
decisions monitoring made about this requester (block, challenge, hold), rate limits on
every key the request has (``limiter``), the requester's risk (no device or a new one, a
device shared by many accounts), a proof of work when the group's level, a decision or that
risk asks for one, and the single-use action token when the route needs one. The first
refusal raises a typed error (``fairslot.guard.errors``) and is reported to the event sink;
so is every allow, in aggregate.

Time comes from the injected ``Clock`` and randomness from the injected ``Randomness``
only; the simulator runs the guard in virtual time by passing a ``FixedClock``.

Nothing here knows about a web framework except ``check``, which reads the few request
attributes the middleware set (``fairslot.guard.fastapi``); ``decide`` is the same check
for any caller that has a ``Requester``. Log-in throttling is ``guard.login``
(``fairslot.guard.login``); decisions are ``guard.decisions`` (``fairslot.guard.decisions``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from fairslot.clock import Clock, SystemClock
from fairslot.config import Settings
from fairslot.guard.client_ip import parse_networks, resolve_client_ip
from fairslot.guard.decisions import DecisionBook, DecisionKind, strongest_level
from fairslot.guard.device import DeviceIds
from fairslot.guard.errors import (
    ActionTokenRefused,
    Blocked,
    BookingInProgress,
    ChallengeRequired,
    Overloaded,
)
from fairslot.guard.events import Decision, GuardEvent, GuardEventSink, NullSink, emit_safely
from fairslot.guard.keys import GuardKeys
from fairslot.guard.ledger import TokenLedger, build_ledger
from fairslot.guard.levels import LevelBook
from fairslot.guard.limiter import RateLimits, Report, key_values
from fairslot.guard.local_windows import LocalWindows
from fairslot.guard.login import LoginThrottle
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
from fairslot.guard.requester import GuardPass, Requester
from fairslot.guard.shedder import LoadShedder
from fairslot.guard.state import SharedState
from fairslot.guard.tokens import ActionTokens, TokenCheck
from fairslot.randomness import Randomness, SystemRandomness

__all__ = ["POW_HEADER", "TOKEN_HEADER", "Guard", "GuardPass", "LoadShedder", "Requester"]

TOKEN_HEADER = "x-fairslot-action-token"  # noqa: S105 - a header name
POW_HEADER = "x-fairslot-pow"

_LEVEL_ORDER = list(GuardLevel)


class _RequestLike(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def state(self) -> Any: ...


class Guard:
    """Request guard built from ``Settings``. One per application process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
        sink: GuardEventSink | None = None,
        ledger: TokenLedger | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.randomness: Randomness = randomness or SystemRandomness()
        self.sink: GuardEventSink = sink if sink is not None else NullSink()
        self.keys = GuardKeys(settings.secret_bytes())
        self.trusted = parse_networks(settings.trusted_proxies)
        self.policies: dict[RouteGroup, GroupPolicy] = build_policies(
            settings.guard_limits, login_attempts_per_minute=settings.login_attempts_per_minute)
        unknown = set(settings.guard_redis_down_refuse) - {g.value for g in RouteGroup}
        if unknown:
            raise ValueError(f"FAIRSLOT_GUARD_REDIS_DOWN_REFUSE: unknown route groups "
                             f"{sorted(unknown)}")
        self.state = SharedState(settings.redis_url, settings.guard_redis_prefix,
                                 settings.guard_redis_retry_seconds, self.clock,
                                 mark=self.randomness.token_hex(8))
        self.ledger: TokenLedger = ledger or build_ledger(
            self.state, settings.guard_ledger_path, self.clock)
        self.tokens = ActionTokens(
            self.keys.token, self.ledger, self.clock, self.randomness,
            min_age=settings.guard_token_min_age_seconds, ttl=settings.guard_token_ttl_seconds)
        self.challenges = Challenges(self.keys.altcha, self.ledger, self.clock,
                                     self.randomness, ttl=settings.guard_challenge_ttl_seconds)
        sync = settings.guard_browsing_sync_seconds
        self.local_windows = (
            LocalWindows(self.state, self.randomness.token_hex(6), sync, self.clock)
            if sync > 0 else None)
        self.limits = RateLimits(self.state, self.local_windows, self.keys, self.clock,
                                 deny_cache_seconds=settings.guard_deny_cache_seconds)
        self.devices = DeviceIds(
            self.keys.device, self.clock, self.randomness,
            young_seconds=settings.guard_device_young_seconds,
            secure=settings.guard_device_cookie_secure)
        self.device_header = settings.guard_device_header.lower()
        self.shedder = LoadShedder((settings.guard_shed_browsing_at,
                                    settings.guard_shed_other_at,
                                    settings.guard_shed_critical_at))
        self.level_book = LevelBook(self.state, self.clock,
                                    GuardLevel(settings.guard_default_level))
        self.decisions = DecisionBook(self.state, self.keys, self.clock, self.randomness)
        self.login = LoginThrottle(self)
        self._allows: dict[RouteGroup, int] = {}
        self._sink_state: dict[str, bool] = {}

    # -- identity of the requester -------------------------------------------------------

    def client_ip(self, peer: str | None, forwarded_for: list[str]) -> str:
        return resolve_client_ip(peer, forwarded_for, self.trusted)

    # -- levels ---------------------------------------------------------------------------

    async def levels(self) -> dict[RouteGroup, GuardLevel]:
        """The level of every group (read at most once a second)."""
        return await self.level_book.all()

    async def level(self, group: RouteGroup | str) -> GuardLevel:
        return await self.level_book.of(group)

    async def set_level(self, group: RouteGroup | str, level: GuardLevel | str) -> bool:
        """Switch a group's level. True when stored in Redis (every worker follows within a
        second); False when only this process holds it (no Redis, or Redis down)."""
        return await self.level_book.set(group, level)

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
            "decisions": len(await self.decisions.active()),
        }

    async def close(self) -> None:
        if self.local_windows is not None:
            await self.local_windows.close()
        await self.ledger.close()
        await self.state.close()

    # -- tokens and challenges for the pages ----------------------------------------------

    def issue_token(self, account_id: str, action: str, target: str = "") -> str:
        """An action token for the screen that leads to ``action`` on ``target``. The
        screen's route is in the ``screens`` group; ``screen_token`` checks and issues in
        one call."""
        return self.tokens.issue(account_id, action, target)

    async def screen_token(self, who: Requester, *, account_id: str, action: str,
                           target: str, patient_id: str | None = None) -> str:
        """Check a screen that issues an action token against the ``screens`` group's
        limits, then issue the token: tokens cannot be collected in bursts."""
        await self.decide(who, RouteGroup.SCREENS, account_id=account_id,
                          patient_id=patient_id)
        return self.tokens.issue(account_id, action, target)

    def subject(self, account_id: str | None) -> str:
        """Whom a challenge is bound to: a keyed hash of the account, or ``-``."""
        return self.keys.pseudonym("account", account_id) if account_id else "-"

    async def new_challenge(
        self, group: RouteGroup | str, *, account_id: str | None = None,
        action: str | None = None, risk: int = 0,
    ) -> dict[str, Any]:
        """A challenge a page can embed ahead of time, at the group's current difficulty.
        ``action`` defaults to the group; use the ``need_token`` action name for routes
        that take a token, since that is what ``check`` binds the solution to."""
        level = await self.level(group)
        return self.challenges.issue(self.subject(account_id), action or RouteGroup(group).value,
                                     self.difficulty(level, risk))

    def difficulty(self, level: GuardLevel, risk: int) -> int:
        """ALTCHA ``maxNumber``: the base, doubled per risk point (up to 4), times the
        level's factor, doubled again while this worker is loaded, never above the max."""
        factor = LEVEL_RULES[level].difficulty_factor * (1 << min(max(risk, 0), 4))
        if self.shedder.loaded:
            factor *= 2
        return min(self.settings.guard_pow_base_maxnumber * factor,
                   self.settings.guard_pow_max_maxnumber)

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
            self.requester(request), group, account_id=account_id, patient_id=patient_id,
            payer=payer, need_token=need_token, target=target,
            token=token if token is not None else headers.get(TOKEN_HEADER),
            pow_payload=pow_payload if pow_payload is not None else headers.get(POW_HEADER),
            risk=risk, exclusive=exclusive)

    def reporter(self, group: RouteGroup, level: GuardLevel, who: Requester,
                 account_id: str | None) -> Report:
        """A function that sends one event about this request to the sink."""
        def report(decision: Decision, reason: str, **fields: Any) -> None:
            emit_safely(
                self.sink,
                GuardEvent(at=self.clock.now(), decision=decision, reason=reason,
                           group=group.value, level=level.value, client_ip=who.client_ip,
                           account_id=account_id, device_id=who.device_id,
                           degraded=self.state.degraded, **fields),
                self._sink_state)
        return report

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
        report = self.reporter(group, level, who, account_id)
        self.shed(policy, report)
        values = key_values(self.keys, who.client_ip, who.device_id, account_id, patient_id,
                            payer)
        await self.decisions.refresh()
        raised, force_pow, held = self.enforce_decisions(group, level, who, account_id, values)
        if raised is not level:
            level, report = raised, self.reporter(group, raised, who, account_id)

        slot: tuple[str, str, float] | None = None
        if exclusive and account_id:
            slot = (self._slot_name(group, account_id), self.randomness.token_hex(8),
                    self.settings.guard_exclusive_seconds)
        # The token is checked here (no I/O) and, when no proof of work can be asked for
        # before it, spent in the admission's own round trip; its refusal still comes
        # after the limits', as if it were checked afterwards.
        checked: TokenCheck | None = None
        spend: tuple[str, float] | None = None
        if need_token is not None and not self._may_ask_pow(group, level, force_pow):
            checked, spend = self.tokens.check(token, account_id or "-", need_token,
                                               target or "")
        device_accounts, on_redis, spent = await self.limits.admit(
            group, policy, LEVEL_RULES[level].cost, values, report,
            device_id=who.device_id, account_id=account_id, slot=slot,
            spend=None if spend is None else
            (spend[0], spend[1] - self.clock.now().timestamp()))
        hold = (slot[0], slot[1], on_redis) if slot is not None else None
        try:
            if self.state.degraded and group.value in self.settings.guard_redis_down_refuse:
                # Without the shared counts each worker would allow its own full limit, and
                # one-booking-at-a-time would hold per worker only: the groups that take
                # slots and money wait for Redis instead (docs/guard.md). A call that was
                # only slow is answered from memory for that request alone.
                report("deny", "shared_state_down")
                raise Overloaded(
                    "Booking is paused for a moment while the server recovers; please try "
                    "again shortly.", retry_after=max(1, math.ceil(
                        self.settings.guard_redis_retry_seconds)), code="guard_unavailable")
            risk = self.risk(who, device_accounts, risk)
            await self.require_pow(group, level, self.subject(account_id),
                                   need_token or group.value, pow_payload, risk, report,
                                   force=force_pow)
            screen_age = None
            if checked is not None and spend is not None and spent is None:
                # Memory answered the admission: the ledger spends it.
                checked = await self.tokens.spend(*spend, age=checked.age)
            elif spent is False and checked is not None:
                checked = TokenCheck(False, "token_replayed", checked.age)
            if checked is not None:
                self._refuse_token(checked, risk, report)
                screen_age = checked.age
            elif need_token is not None:
                screen_age = await self._redeem_token(token, account_id, need_token, target,
                                                      risk, report)
        except BaseException:
            if hold is not None:
                await self.state.release(*hold)
            raise
        if held:
            report("allow", "held_for_review", risk=risk)
        else:
            self.count_allow(group, level, risk, report)
        return GuardPass(group, level, risk, who.client_ip, device_accounts, hold, held,
                         screen_age)

    async def release(self, passed: GuardPass) -> None:
        """Give back the one-at-a-time slot an ``exclusive`` check took."""
        if passed.hold is not None:
            await self.state.release(*passed.hold)

    def shed(self, policy: GroupPolicy, report: Report) -> None:
        if self.shedder.should_shed(policy.shed_tier):
            self.shedder.shed_count += 1
            report("deny", "overloaded")
            raise Overloaded("The service is busy; please try again in a few seconds.",
                             retry_after=2)

    def enforce_decisions(
        self, group: RouteGroup, level: GuardLevel, who: Requester, account_id: str | None,
        values: Mapping[KeyKind, str | None],
    ) -> tuple[GuardLevel, bool, tuple[str, ...]]:
        """Apply the decisions in force on this request's keys: refuse if one blocks it;
        otherwise the level to decide at, whether proof of work is forced, and the ids of
        hold-for-review decisions."""
        found = self.decisions.active_for(values)
        if not found:
            return level, False, ()
        blocks = [d for d in found if d.kind is DecisionKind.BLOCK]
        if blocks:
            until = max(d.until for d in blocks)
            self.reporter(group, level, who, account_id)(
                "deny", "blocked", key=blocks[0].entity.value, key_hash=blocks[0].key[:22])
            raise Blocked("Access from here is suspended for now.",
                          retry_after=max(1, math.ceil(until - self.clock.now().timestamp())))
        raised = strongest_level(found)
        if raised is not None and _LEVEL_ORDER.index(raised) > _LEVEL_ORDER.index(level):
            level = raised
        held = tuple(d.id for d in found if d.kind is DecisionKind.HOLD)
        return level, raised is not None, held

    def risk(self, who: Requester, device_accounts: int | None, risk: int) -> int:
        """The caller's risk plus: no device +1, a new device +1, a device used with more
        than ``guard_device_accounts_risky`` accounts +1 (more than twice that: +2)."""
        if who.device_id is None or who.device_new:
            risk += 1
        if device_accounts is not None:
            threshold = self.settings.guard_device_accounts_risky
            if device_accounts > threshold:
                risk += 1 if device_accounts <= 2 * threshold else 2
        return risk

    async def require_pow(
        self, group: RouteGroup, level: GuardLevel, subject: str, action: str,
        pow_payload: str | None, risk: int, report: Report, *, force: bool = False,
    ) -> None:
        """Raise ``ChallengeRequired`` (with a fresh challenge) unless the level, the risk
        and ``force`` ask for no proof of work, or ``pow_payload`` is a valid, unspent
        solution for ``subject`` and ``action``."""
        policy = self.policies[group]
        pow_mode = LEVEL_RULES[level].pow
        needed = policy.challengeable and (
            force or pow_mode is PowMode.ALWAYS or (pow_mode is PowMode.RISKY and risk >= 1))
        if not needed:
            return
        result = await self.challenges.redeem(pow_payload, subject, action)
        if result.ok:
            return
        reason = "challenge_required" if not pow_payload else result.reason
        report("challenge", reason, risk=risk)
        raise ChallengeRequired(
            "Please wait while your browser completes a short check.",
            challenge=self.challenges.issue(subject, action, self.difficulty(level, risk)))

    def _may_ask_pow(self, group: RouteGroup, level: GuardLevel, force: bool) -> bool:
        """Whether ``require_pow`` could ask this request for a proof of work, whatever
        its risk turns out to be."""
        return self.policies[group].challengeable and (
            force or LEVEL_RULES[level].pow is not PowMode.NEVER)

    async def _redeem_token(self, token: str | None, account_id: str | None, action: str,
                            target: str | None, risk: int, report: Report) -> float | None:
        """Spend the token; the seconds since its screen, or raise ``ActionTokenRefused``."""
        checked = await self.tokens.redeem(token, account_id or "-", action, target or "")
        self._refuse_token(checked, risk, report)
        return checked.age

    @staticmethod
    def _refuse_token(checked: TokenCheck, risk: int, report: Report) -> None:
        if not checked.ok:
            report("deny", checked.reason, risk=risk)
            raise ActionTokenRefused(_TOKEN_DETAIL[checked.reason], code=checked.reason)

    def _slot_name(self, group: RouteGroup, account_id: str) -> str:
        return f"{group.value}:{self.keys.pseudonym('account', account_id)}"

    def count_allow(self, group: RouteGroup, level: GuardLevel, risk: int,
                    report: Report) -> None:
        """Report an allow: one by one when ``guard_allow_event_every`` is 1, else one
        event per that many allows of the group."""
        every = self.settings.guard_allow_event_every
        if every <= 1:
            report("allow", "ok", risk=risk)
            return
        count = self._allows.get(group, 0) + 1
        if count >= every:
            count = 0
            emit_safely(
                self.sink,
                GuardEvent(at=self.clock.now(), decision="allow", reason="ok",
                           group=group.value, level=level.value, client_ip="*",
                           degraded=self.state.degraded, count=every, risk=risk),
                self._sink_state)
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
        owner = self.randomness.token_hex(8)
        name = self._slot_name(group, account_id)
        taken, on_redis = await self.state.acquire(
            name, owner, self.settings.guard_exclusive_seconds)
        if not taken:
            level = await self.level(group)
            self.reporter(group, level, Requester(client_ip, device_id), account_id)(
                "deny", "busy")
            raise BookingInProgress(
                "Your previous request is still being processed; please wait for it.")
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
