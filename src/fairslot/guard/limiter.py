"""Rate limits on every key a request has, admitted all at once or not at all.

A request names up to six keys (address, prefix, device, account, patient, payer); each
group's policy has limits on some of them. ``RateLimits.admit`` tests them all and counts
them only if every one has room, in one Redis round trip shared with the other requests of
the same moment (or in this worker, for browsing and in embedded mode). In the same trip it
adds the account to the device's set of accounts and, when asked, takes the account's
one-at-a-time slot. A refusal raises ``RateLimited`` naming the key and limit that refused.

A worker remembers, for ``guard_deny_cache_seconds``, a key it just saw over a limit and
refuses it again without asking Redis, so a flood costs Redis almost nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping

import limits

from fairslot.clock import Clock
from fairslot.guard.client_ip import address_key, prefix_key
from fairslot.guard.errors import BookingInProgress, RateLimited
from fairslot.guard.keys import GuardKeys
from fairslot.guard.local_windows import LocalWindows
from fairslot.guard.policy import GroupPolicy, KeyKind, RouteGroup
from fairslot.guard.state import SharedState
from fairslot.guard.windows import Hit

__all__ = ["LOCAL_GROUPS", "RateLimits", "Report", "key_values"]

Report = Callable[..., None]
"""``report(decision, reason, **event fields)``: sends one event to the guard's sink."""

# Groups counted in the worker and shared in the background (see local_windows.py).
LOCAL_GROUPS = frozenset({RouteGroup.BROWSING})

_DEVICE_SEEN_SECONDS = 60.0
_DEVICE_SEEN_MAX = 50_000
_DENY_CACHE_MAX = 50_000
_DEVICE_SET_TTL = 30 * 24 * 3600


class RateLimits:
    def __init__(self, state: SharedState, local_windows: LocalWindows | None,
                 keys: GuardKeys, clock: Clock, *, deny_cache_seconds: float) -> None:
        self._state = state
        self._local = local_windows
        self._keys = keys
        self._clock = clock
        self._deny_cache_seconds = deny_cache_seconds
        # (key, id of the policy's limit item) -> (refuse until, reset at, remaining), on
        # the clock's monotonic seconds. Items live as long as the guard's policies, so
        # their ids are stable.
        self._deny_cache: OrderedDict[tuple[str, int], tuple[float, float, int]] = OrderedDict()
        self._device_seen: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    async def admit(
        self, group: RouteGroup, policy: GroupPolicy, cost: int,
        values: Mapping[KeyKind, str | None], report: Report, *,
        device_id: str | None = None, account_id: str | None = None,
        slot: tuple[str, str, float] | None = None,
        spend: tuple[str, float] | None = None,
    ) -> tuple[int | None, bool, bool | None]:
        """Admit a request against every limit of ``policy`` whose key it has, or raise
        ``RateLimited`` for the first without room (counting none). With ``device_id`` and
        ``account_id`` the account joins the device's set (its size is returned); with
        ``slot`` = (name, owner, ttl) the slot is taken (``BookingInProgress`` if another
        request holds it); with ``spend`` = (ledger name, ttl) an admitted request's action
        token is spent in the same round trip when Redis answers. Returns (accounts of the
        device or None, slot taken on Redis, whether the token was spent now: None when
        it was not asked or memory answered)."""
        now = self._clock.monotonic()
        hits: list[Hit] = []
        kinds: list[KeyKind] = []
        for kind, item in policy.limits:
            value = values[kind]
            if not value:
                continue
            key = f"{group.value}/{kind.value}/{value}"
            cached = self._deny_cache.get((key, id(item)))
            if cached is not None and cached[0] > now:
                # Seen over this limit a moment ago: refuse without another round trip.
                self._refuse(kind, item, value, cached[1] - now, cached[2], cost, report)
            hits.append((item, key, min(cost, item.amount)))
            kinds.append(kind)
        member, device_accounts = self._device_member(device_id, account_id)
        if not hits and member is None and slot is None and spend is None:
            return device_accounts, False, None
        if self._local is not None and group in LOCAL_GROUPS and member is None \
                and slot is None and spend is None:
            refused = self._local.admit(hits)
            if refused is not None:
                item, key, _ = hits[refused]
                remaining, reset_in = self._local.remaining(item, key)
                self._refuse(kinds[refused], item, values[kinds[refused]] or "", reset_in,
                             remaining, cost, report)
            return device_accounts, False, None
        admission = await self._state.admit(hits, member, slot, spend)
        if admission.refused is not None:
            hit = hits[admission.refused]
            kind = kinds[admission.refused]
            window = await self._state.window(hit)
            reset_in = max(window.reset_in, 1.0)
            if self._deny_cache_seconds > 0:
                self._remember_denial((hit[1], id(hit[0])),
                                      now + min(self._deny_cache_seconds, reset_in),
                                      now + reset_in, window.remaining)
            self._refuse(kind, hit[0], values[kind] or "", reset_in, window.remaining, cost,
                         report)
        if admission.device_accounts is not None and device_id and account_id:
            device_accounts = self._remember_device(device_id, account_id,
                                                    admission.device_accounts)
        if admission.busy:
            report("deny", "busy")
            raise BookingInProgress(
                "Your previous request is still being processed; please wait for it.")
        return device_accounts, admission.on_redis, admission.spent

    def _remember_denial(self, key: tuple[str, int], until: float, reset_at: float,
                         remaining: int) -> None:
        self._deny_cache[key] = (until, reset_at, remaining)
        self._deny_cache.move_to_end(key)
        while len(self._deny_cache) > _DENY_CACHE_MAX:
            self._deny_cache.popitem(last=False)

    @staticmethod
    def _refuse(kind: KeyKind, item: limits.RateLimitItem, value: str, reset_in: float,
                remaining: int, cost: int, report: Report) -> None:
        retry_after = max(1, math.ceil(reset_in))
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

    def _device_member(self, device_id: str | None, account_id: str | None
                       ) -> tuple[tuple[str, str, float] | None, int | None]:
        """What to add to the device's account set, unless this pair was counted within the
        last minute (then the remembered count, and no Redis work)."""
        if not device_id or not account_id:
            return None, None
        seen = self._device_seen.get((device_id, account_id))
        if seen is not None and seen[0] > self._clock.monotonic():
            return None, seen[1]
        member = self._keys.pseudonym("account", account_id)
        return ("dev:" + device_id, member, _DEVICE_SET_TTL), None

    def _remember_device(self, device_id: str, account_id: str, count: int) -> int:
        pair = (device_id, account_id)
        self._device_seen[pair] = (self._clock.monotonic() + _DEVICE_SEEN_SECONDS, count)
        self._device_seen.move_to_end(pair)
        while len(self._device_seen) > _DEVICE_SEEN_MAX:
            self._device_seen.popitem(last=False)
        return count


def key_values(keys: GuardKeys, client_ip: str, device_id: str | None,
               account_id: str | None, patient_id: str | None,
               payer: str | None) -> dict[KeyKind, str | None]:
    """The guard's key of each kind for one request. A request without a device counts its
    device-keyed limits under its IP prefix, shared with every other request there that
    has none: throwing the cookie away never gives a fresh device."""
    prefix = prefix_key(client_ip)
    return {
        KeyKind.IP: address_key(client_ip),
        KeyKind.PREFIX: prefix,
        KeyKind.DEVICE: device_id or "none@" + prefix,
        KeyKind.ACCOUNT: account_id and keys.pseudonym("account", account_id),
        KeyKind.PATIENT: patient_id and keys.pseudonym("patient", patient_id),
        KeyKind.PAYER: payer and keys.pseudonym("payer", payer),
    }
