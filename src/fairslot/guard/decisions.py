"""Decisions about single requesters, with a lifetime, that every worker enforces.

Monitoring (or an operator) decides that one address, /24 or /48 prefix, device, account,
patient or payer gets special treatment for a while:

- ``challenge``: its requests are decided at a higher level (``elevated`` by default, or
  ``under_attack``) and must solve a proof of work on every challengeable request, whatever
  its group's level and its risk;
- ``hold``: its requests go through, and ``GuardPass.held_for_review`` names the decision;
  the service then keeps what it creates (a booking) unconfirmed until an investigator
  approves. The guard only reports; the service acts;
- ``block``: its requests are refused (``403 blocked``, ``Retry-After`` until the decision
  ends).

Decisions live in Redis (a hash of records and a version counter) or, in embedded mode, in
the process. Each worker checks the version at most once a second on the injected clock and
reloads the records when it changed, so a new or lifted decision is enforced everywhere
within a second; a decision ends at its ``until`` on the clock, without a reload. Records
hold the guard's keys for the entity (keyed hashes for accounts, patients and payers), not
the identifiers themselves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fairslot.clock import Clock
from fairslot.guard.client_ip import address_key, prefix_key
from fairslot.guard.keys import GuardKeys
from fairslot.guard.policy import GuardLevel, KeyKind
from fairslot.guard.state import SharedState
from fairslot.randomness import Randomness

__all__ = ["CACHE_SECONDS", "DecisionBook", "DecisionKind", "EntityDecision"]

CACHE_SECONDS = 1.0


class DecisionKind(enum.StrEnum):
    CHALLENGE = "challenge"
    HOLD = "hold"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class EntityDecision:
    id: str
    kind: DecisionKind
    entity: KeyKind
    key: str
    """The guard's key for the entity: the address, the prefix, the device id, or a keyed
    hash of the account, patient or payer id."""
    until: float
    """Seconds since the epoch (the guard's clock) when it ends."""
    created: float
    reason: str = ""
    """What monitoring gives as the cause (a scenario name); never PII."""
    level: GuardLevel | None = None
    """For ``challenge``: the level its requests are decided at."""

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "level": self.level and self.level.value},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EntityDecision:
        data = json.loads(text)
        return cls(
            id=str(data["id"]), kind=DecisionKind(data["kind"]), entity=KeyKind(data["entity"]),
            key=str(data["key"]), until=float(data["until"]), created=float(data["created"]),
            reason=str(data.get("reason", "")),
            level=GuardLevel(data["level"]) if data.get("level") else None,
        )

    @property
    def ends_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.until, dt.UTC)


class DecisionBook:
    def __init__(self, state: SharedState, keys: GuardKeys, clock: Clock,
                 randomness: Randomness) -> None:
        self._state = state
        self._keys = keys
        self._clock = clock
        self._randomness = randomness
        self._read_at = -math.inf
        self._version: int | None = None
        self._records: dict[str, EntityDecision] = {}
        self._index: dict[tuple[KeyKind, str], list[EntityDecision]] = {}

    # -- keys -----------------------------------------------------------------------------

    def key_of(self, entity: KeyKind | str, value: str) -> str:
        """The guard's key for an entity, as its limits and decisions use it. A prefix may
        be given as any address inside it or as the prefix itself (IPv4 /24, IPv6 /48)."""
        entity = KeyKind(entity)
        if entity is KeyKind.IP:
            return address_key(value)
        if entity is KeyKind.PREFIX:
            if "/" in value:
                network = ipaddress.ip_network(value, strict=False)
                if network.prefixlen != (24 if network.version == 4 else 48):
                    raise ValueError("a prefix decision names an IPv4 /24 or an IPv6 /48")
                value = str(network.network_address)
            return prefix_key(value)
        if entity is KeyKind.DEVICE:
            return value
        return self._keys.pseudonym(entity.value, value)

    # -- changes --------------------------------------------------------------------------

    async def apply(
        self, kind: DecisionKind | str, entity: KeyKind | str, value: str, *,
        lifetime: dt.timedelta, reason: str = "", level: GuardLevel | str | None = None,
        decision_id: str | None = None,
    ) -> EntityDecision:
        """Decide about one entity for ``lifetime``. ``decision_id`` lets the caller make a
        repeat idempotent (the same id replaces the earlier record); by default one is
        made. Enforced by this worker at once and by every other within a second."""
        kind = DecisionKind(kind)
        if lifetime <= dt.timedelta(0):
            raise ValueError("a decision needs a positive lifetime")
        chosen: GuardLevel | None = None
        if kind is DecisionKind.CHALLENGE:
            chosen = GuardLevel(level) if level is not None else GuardLevel.ELEVATED
            if chosen is GuardLevel.NORMAL:
                raise ValueError("a challenge decision raises the level above normal")
        elif level is not None:
            raise ValueError("only a challenge decision has a level")
        now = self._clock.now().timestamp()
        decision = EntityDecision(
            id=decision_id or self._randomness.token_hex(8), kind=kind,
            entity=KeyKind(entity), key=self.key_of(entity, value),
            until=now + lifetime.total_seconds(), created=now, reason=reason[:200],
            level=chosen,
        )
        await self._state.put_decision(decision.id, decision.to_json())
        self._records[decision.id] = decision
        self._reindex()
        return decision

    async def lift(self, decision_id: str) -> bool:
        """End a decision now. True if it existed."""
        existed = await self._state.drop_decisions([decision_id])
        existed = self._records.pop(decision_id, None) is not None or existed
        self._reindex()
        return existed

    # -- reading --------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reload from Redis if the last check is a second old and something changed."""
        now = self._clock.monotonic()
        if now - self._read_at < CACHE_SECONDS:
            return
        self._read_at = now
        version = await self._state.decisions_version()
        if version == self._version:
            return
        version, raw = await self._state.load_decisions()
        records: dict[str, EntityDecision] = {}
        for decision_id, text in raw.items():
            try:
                records[decision_id] = EntityDecision.from_json(text)
            except (ValueError, KeyError, TypeError):
                continue  # a record this version cannot read is not enforced
        self._version = version
        self._records = records
        self._reindex()
        ended = [d.id for d in records.values() if d.until <= self._clock.now().timestamp()]
        if ended:
            await self._state.drop_decisions(ended)

    def _reindex(self) -> None:
        index: dict[tuple[KeyKind, str], list[EntityDecision]] = {}
        for decision in self._records.values():
            index.setdefault((decision.entity, decision.key), []).append(decision)
        self._index = index

    @property
    def empty(self) -> bool:
        return not self._index

    def active_for(self, keys: Mapping[KeyKind, str | None]) -> list[EntityDecision]:
        """The decisions in force on any of ``keys`` (the guard's keys of one request)."""
        if not self._index:
            return []
        now = self._clock.now().timestamp()
        found: list[EntityDecision] = []
        for kind, key in keys.items():
            if key:
                found.extend(d for d in self._index.get((kind, key), ()) if d.until > now)
        return found

    async def active(self) -> list[EntityDecision]:
        """Every decision in force, newest first (for an operator's console)."""
        await self.refresh()
        now = self._clock.now().timestamp()
        return sorted((d for d in self._records.values() if d.until > now),
                      key=lambda d: d.created, reverse=True)

    async def lookup(self, entity: KeyKind | str, value: str) -> list[EntityDecision]:
        """The decisions in force on one entity, given by its identifier."""
        await self.refresh()
        return self.active_for({KeyKind(entity): self.key_of(entity, value)})


def strongest_level(decisions: Iterable[EntityDecision]) -> GuardLevel | None:
    """The highest level that ``challenge`` decisions ask for, if any."""
    order = list(GuardLevel)
    levels = [d.level for d in decisions if d.kind is DecisionKind.CHALLENGE and d.level]
    return max(levels, key=order.index) if levels else None
