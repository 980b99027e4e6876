"""Sliding windows of event time: the detectors' only state.

A window holds, per key, a set of members with the latest time each was seen, and forgets
members older than the window's length. Everything a scenario counts is a set: requests are
counted as the set of their event ids, patients behind an IP as the set of patient ids.
Adding a member twice changes nothing, so an event the stream delivers again (at-least-once)
leaves every count as it was: an operation that changes nothing counts what came up to its
own time, which is what it counted the first time. An operation that does change the set is
counted with the window it falls in as the store knows it now: if later events of the same
key were processed first (a monitor died holding this one, and another took it over), it is
counted with them, so a threshold they crossed together is still seen. An event later than
a whole window is counted with what came before it.

Detectors do not call the store one member at a time: for a batch of events they list their
operations, the store runs them all in order and returns one result per operation. In
memory that is a loop; in Redis it is a few script calls in one round trip, and the state is
shared by every monitor of the consumer group, so counts are the platform's, not one
process's.

Operations (tuples, for speed):

- ``(ADD, window, key, member, ts, sample_at)``: add, then the number of members seen in
  ``(end - seconds, end]``, where ``end`` is the key's newest time if the member was new (or
  newer) and ``ts`` is within a window of that time, else ``ts``; when that reaches
  ``sample_at`` (> 0), a pair ``(count, members)`` with up to ``SAMPLE`` of the most recent
  members (newest first) instead, for evidence.
- ``(RECENT, window, key, "", ts, ahead)``: no change; the members seen in
  ``(ts - seconds, ts]`` (or, with ``ahead`` true, in ``(ts, ts + seconds]``) with their
  times, oldest first.
- ``(COOCCUR, bucket_window, bucket_key, account, ts, sessions_window, pairs_window, session,
  max_bucket)``: lockstep bookkeeping (see ``scenarios.rings.Lockstep``): put the account in
  the bucket, the session in the account's set, and the session in the pair set of the
  account and each other account of the bucket; result ``(own_sessions, [(other, shared,
  other_sessions), ...])``, or ``(own_sessions, [])`` when the bucket is crowded (more than
  ``max_bucket`` accounts). When a bucket becomes crowded, the session leaves the pair sets
  of the accounts that were in it: a moment everybody shared links nobody.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import redis

__all__ = [
    "ADD",
    "COOCCUR",
    "RECENT",
    "SAMPLE",
    "MemoryWindows",
    "Op",
    "RedisWindows",
    "Window",
    "WindowStore",
]

ADD = 0
RECENT = 1
COOCCUR = 2
SAMPLE = 20

Op = tuple[Any, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    name: str
    seconds: float
    cap: int = 10_000
    """Most members kept per key (the oldest go first): a bound on memory under a flood."""


class WindowStore(Protocol):
    def run(self, ops: Sequence[Op]) -> list[Any]:
        """Apply ``ops`` in order; one result per operation."""
        ...


class _Members:
    """One key's members: the latest time of each (``seen``) and every sighting in arrival
    order (``order``), so that expiry pops from the front of a deque. A member seen again
    leaves an older sighting behind, which expiry then skips. A sighting older than the
    key's newest (a late or redelivered event) makes the key ``disordered`` until the
    window has moved past it; meanwhile expiry and counting scan the members."""

    __slots__ = ("changed", "disorder_mark", "disordered", "newest", "order", "seen")

    def __init__(self, member: str, ts: float) -> None:
        self.changed = True
        """Whether the last add changed the set (a new member, or a newer time)."""
        self.seen: dict[str, float] = {member: ts}
        self.order: deque[tuple[float, str]] = deque(((ts, member),))
        self.newest = ts
        self.disordered = False
        self.disorder_mark = float("-inf")


class MemoryWindows:
    """Windows in this process's memory: embedded mode, replays and benchmarks."""

    SWEEP_EVERY = 200_000

    def __init__(self) -> None:
        # A key with a single member is kept as a bare (member, time) pair until a second
        # one comes: most keys of a rate window (one request of an account) never do.
        self._state: dict[str, dict[str, _Members | tuple[str, float]]] = {}
        self._seconds: dict[str, float] = {}
        self._ops = 0
        self._latest = float("-inf")
        # For the sweep: the earliest time of any operation since the last one, and per
        # window the oldest newest-time of a key it left (keys' newest times only grow).
        self._earliest = float("inf")
        self._floor: dict[str, float] = {}

    def keys(self, window: Window) -> int:
        """How many keys the window holds (for tests and the bench)."""
        return len(self._state.get(window.name, {}))

    def _table(self, window: Window) -> dict[str, _Members | tuple[str, float]]:
        table = self._state.get(window.name)
        if table is None:
            table = self._state[window.name] = {}
            self._seconds[window.name] = window.seconds
        return table

    @staticmethod
    def _get(table: dict[str, _Members | tuple[str, float]], key: str) -> _Members | None:
        entry = table.get(key)
        if isinstance(entry, tuple):
            entry = table[key] = _Members(entry[0], entry[1])
        return entry

    def _add(self, window: Window, key: str, member: str, ts: float) -> _Members:
        table = self._state.get(window.name)
        if table is None:
            table = self._table(window)
        entry = self._get(table, key)
        if entry is None:
            entry = _Members(member, ts)
            table[key] = entry
            return entry
        seen = entry.seen
        last = seen.get(member)
        entry.changed = last is None or ts > last
        if entry.changed:
            seen[member] = ts
            entry.order.append((ts, member))
            if ts < entry.newest:
                entry.disordered = True
                entry.disorder_mark = entry.newest
            else:
                entry.newest = ts
        order = entry.order
        # Expire by this operation's own time, as the Redis script does: a late event is
        # counted with what it saw, and the next newer one expires it.
        horizon = ts - window.seconds
        if order[0][0] <= horizon:
            popleft = order.popleft
            while order and order[0][0] <= horizon:
                old, gone = popleft()
                if seen.get(gone) == old:
                    del seen[gone]
        if entry.disordered:
            for gone in [m for m, t in seen.items() if t <= horizon]:
                del seen[gone]
            if horizon >= entry.disorder_mark or not seen:
                entry.disordered = False
        if len(seen) > window.cap:
            self._evict(entry, window.cap)
        return entry

    @staticmethod
    def _evict(entry: _Members, cap: int) -> None:
        """Drop the oldest members down to ``cap``, by time and then by name, as Redis
        drops the lowest scores."""
        seen, order = entry.seen, entry.order
        while len(seen) > cap:
            if entry.disordered:
                del seen[min(seen.items(), key=lambda item: (item[1], item[0]))[0]]
                continue
            while seen.get(order[0][1]) != order[0][0]:
                order.popleft()
            first = order[0][0]
            ties = []
            for at, name in order:
                if at != first:
                    break
                if seen.get(name) == at:
                    ties.append(name)
            del seen[min(ties)]

    @staticmethod
    def _end(entry: _Members, seconds: float, ts: float, changed: bool | None = None,
             ) -> float:
        """Where the window an event falls in ends: the key's newest time, unless the event
        changed nothing (``changed``, by default the key's last add) or is older than a
        whole window before it."""
        if changed is None:
            changed = entry.changed
        return entry.newest if changed and ts > entry.newest - seconds else ts

    def _current(self, entry: _Members, seconds: float, ts: float,
                 changed: bool | None = None) -> int:
        end = self._end(entry, seconds, ts, changed)
        return self._count(entry, end - seconds, end)

    @staticmethod
    def _count(entry: _Members, low: float, ts: float) -> int:
        if not entry.disordered and ts >= entry.newest:
            return len(entry.seen)
        return sum(1 for seen in entry.seen.values() if low < seen <= ts)

    def _newest(self, entry: _Members, seconds: float, end: float) -> list[str]:
        """Up to ``SAMPLE`` members of ``(end - seconds, end]``, newest first (ties by name
        descending, as Redis lists them)."""
        if entry.disordered or end < entry.newest:
            found = self._recent(entry, end - seconds, end)
            return [m for m, _ in reversed(found[-SAMPLE:])]
        # In order: the newest sightings are at the back of the deque. Take them until
        # SAMPLE members are found and the time changes, so that ties are complete.
        seen = entry.seen
        picked: dict[str, float] = {}
        last = None
        for at, member in reversed(entry.order):
            if len(picked) >= SAMPLE and at != last:
                break
            if seen.get(member) == at and member not in picked:
                picked[member] = at
                last = at
        ordered = sorted(picked.items(), key=lambda pair: (pair[1], pair[0]), reverse=True)
        return [m for m, _ in ordered[:SAMPLE]]

    @staticmethod
    def _recent(entry: _Members, low: float, ts: float) -> list[tuple[str, float]]:
        """Members seen in ``(low, ts]``, oldest first (ties by name, as Redis orders)."""
        found = [(m, seen) for m, seen in entry.seen.items() if low < seen <= ts]
        found.sort(key=lambda pair: (pair[1], pair[0]))
        return found

    def run(self, ops: Sequence[Op]) -> list[Any]:
        results: list[Any] = []
        append = results.append
        add = self._add
        state = self._state
        latest = self._latest
        earliest = self._earliest
        for op in ops:
            code = op[0]
            ts = op[4]
            if ts > latest:
                latest = ts
            if ts < earliest:
                earliest = ts
            if code == ADD:
                window = op[1]
                table = state.get(window.name)
                if table is not None:
                    key = op[2]
                    entry = table.get(key)
                    if entry is None:
                        # A key seen for the first time (the most common case).
                        table[key] = (op[3], ts)
                        sample_at = op[5]
                        append((1, [op[3]]) if sample_at and sample_at <= 1 else 1)
                        continue
                    member = op[3]
                    if isinstance(entry, tuple):
                        if ts >= entry[1] + window.seconds or (
                                ts >= entry[1] and member == entry[0]):
                            # Its lone member has left the window, or is seen again: the
                            # key holds this one member at this time.
                            if ts != entry[1] or member != entry[0]:
                                table[key] = (member, ts)
                            sample_at = op[5]
                            append((1, [member]) if sample_at and sample_at <= 1 else 1)
                            continue
                        entry = table[key] = _Members(entry[0], entry[1])
                    seen = entry.seen
                    if not entry.disordered and ts >= entry.newest:
                        # In time order (the next most common): a new member, or one seen
                        # again; append its sighting, then expire from the front.
                        last = seen.get(member)
                        if last is None:
                            fresh = len(seen) < window.cap
                        else:
                            fresh = True
                            entry.changed = ts > last
                        if fresh:
                            order = entry.order
                            if last is None or ts > last:
                                seen[member] = ts
                                order.append((ts, member))
                                entry.newest = ts
                                entry.changed = True
                            horizon = ts - window.seconds
                            if order[0][0] <= horizon:
                                popleft = order.popleft
                                while order[0][0] <= horizon:
                                    old, gone = popleft()
                                    if seen.get(gone) == old:
                                        del seen[gone]
                            count = len(seen)
                            sample_at = op[5]
                            if sample_at and count >= sample_at:
                                append((count, self._newest(entry, window.seconds, ts)))
                            else:
                                append(count)
                            continue
                entry = add(window, op[2], op[3], ts)
                if not entry.disordered and ts >= entry.newest:
                    count = len(entry.seen)
                    end = ts
                else:
                    end = self._end(entry, window.seconds, ts)
                    count = self._count(entry, end - window.seconds, end)
                sample_at = op[5]
                if sample_at and count >= sample_at:
                    append((count, self._newest(entry, window.seconds, end)))
                else:
                    append(count)
            elif code == RECENT:
                window = op[1]
                known = self._get(self._table(window), op[2])
                if known is None:
                    append([])
                elif op[5]:
                    append(self._recent(known, ts, ts + window.seconds))
                else:
                    append(self._recent(known, ts - window.seconds, ts))
            elif code == COOCCUR:
                append(self._cooccur(op))
            else:
                raise ValueError(f"unknown window operation {code!r}")
        self._latest = latest
        self._earliest = earliest
        self._ops += len(ops)
        if self._ops >= self.SWEEP_EVERY:
            self._ops = 0
            self.sweep()
        return results

    def _cooccur(self, op: Op) -> tuple[int, list[tuple[str, int, int]]]:
        _code, buckets, key, account, ts, sessions, pairs, session, max_bucket = op
        entry = self._add(buckets, key, account, ts)
        end = self._end(entry, buckets.seconds, ts)
        others = [m for m, _ in self._recent(entry, end - buckets.seconds, end) if m != account]
        own = self._current(self._add(sessions, account, session, ts), sessions.seconds, ts)
        if len(others) + 1 > max_bucket:
            if len(others) == max_bucket:
                # The bucket has just become crowded: the moments its members shared here
                # say nothing after all, so they leave the pairs' shared sessions.
                pair_table = self._table(pairs)
                for i, first in enumerate(others):
                    for second in others[i + 1:]:
                        pair = f"{first}|{second}" if first < second else f"{second}|{first}"
                        known = self._get(pair_table, pair)
                        if known is not None:
                            known.seen.pop(session, None)
            return own, []
        matches: list[tuple[str, int, int]] = []
        session_table = self._table(sessions)
        for other in others:
            pair = f"{account}|{other}" if account < other else f"{other}|{account}"
            pair_entry = self._add(pairs, pair, session, ts)
            theirs = self._get(session_table, other)
            their_count = 0 if theirs is None else self._current(
                theirs, sessions.seconds, ts, pair_entry.changed)
            matches.append((other, self._current(pair_entry, pairs.seconds, ts), their_count))
        return own, matches

    def sweep(self) -> int:
        """Forget keys whose newest member left its window; returns how many went.

        A window none of whose keys can have left it is not walked. Its floor is a bound on
        its keys' newest times: the oldest newest time it kept when last walked, lowered by
        the earliest operation of every sweep since (a key's newest time never decreases,
        and a key added later is no older than the operation that added it)."""
        gone = 0
        inf = float("inf")
        earliest = self._earliest
        for name, table in self._state.items():
            horizon = self._latest - self._seconds[name]
            bound = min(self._floor.get(name, inf), earliest)
            if horizon < bound:
                self._floor[name] = bound
                continue
            stale = []
            floor = inf
            for key, entry in table.items():
                newest = entry[1] if isinstance(entry, tuple) else entry.newest
                if newest <= horizon:
                    stale.append(key)
                elif newest < floor:
                    floor = newest
            for key in stale:
                del table[key]
            self._floor[name] = floor
            gone += len(stale)
        self._earliest = inf
        return gone


# One script runs a slice of a batch's operations inside Redis. The windows' names, lengths
# and caps come first in ARGV, then eight fields per operation.
_SCRIPT = """
local prefix = ARGV[1]
local nw = tonumber(ARGV[2])
local names, secs, caps = {}, {}, {}
local i = 3
for w = 1, nw do
  names[w] = ARGV[i]; secs[w] = tonumber(ARGV[i + 1]); caps[w] = tonumber(ARGV[i + 2])
  i = i + 3
end
local function key_of(w, key) return prefix .. names[w] .. ':' .. key end
local function fmt(x) return string.format('%.6f', x) end
local changed = 0
local function add(w, key, member, ts)
  local k = key_of(w, key)
  changed = redis.call('ZADD', k, 'GT', 'CH', ts, member)
  local low = fmt(tonumber(ts) - secs[w])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', low)
  local card = redis.call('ZCARD', k)
  if card > caps[w] then redis.call('ZREMRANGEBYRANK', k, 0, card - caps[w] - 1) end
  redis.call('PEXPIRE', k, math.ceil(secs[w] * 1000) + 60000)
  return k, low
end
local function count(k, low, ts) return redis.call('ZCOUNT', k, '(' .. low, ts) end
-- Where the window an event falls in ends: the key's newest time, unless the event is
-- older than a whole window before it.
local function window_end(k, w, ts, ch)
  if ch == 0 then return ts end
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if top[2] ~= nil then
    local newest = tonumber(top[2])
    if newest > tonumber(ts) and tonumber(ts) > newest - secs[w] then return top[2] end
  end
  return ts
end
local function current(k, w, ts, ch)
  local e = window_end(k, w, ts, ch)
  return count(k, fmt(tonumber(e) - secs[w]), e), e
end
local out = {}
while i <= #ARGV do
  local code, w, key = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local member, ts = ARGV[i + 3], ARGV[i + 4]
  local x1, x2, x3 = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  i = i + 8
  if code == '0' then
    local k = add(w, key, member, ts)
    local n, e = current(k, w, ts, changed)
    local sample_at = tonumber(x1)
    if sample_at > 0 and n >= sample_at then
      local low = fmt(tonumber(e) - secs[w])
      out[#out + 1] = {n, redis.call('ZREVRANGEBYSCORE', k, e, '(' .. low, 'LIMIT', 0, SAMPLE)}
    else
      out[#out + 1] = n
    end
  elseif code == '1' then
    local k = key_of(w, key)
    if x1 == '1' then
      local high = fmt(tonumber(ts) + secs[w])
      out[#out + 1] = redis.call('ZRANGEBYSCORE', k, '(' .. ts, high, 'WITHSCORES')
    else
      local low = fmt(tonumber(ts) - secs[w])
      out[#out + 1] = redis.call('ZRANGEBYSCORE', k, '(' .. low, ts, 'WITHSCORES')
    end
  else
    local sw, pw = tonumber(x1), tonumber(x2)
    local sep = string.find(x3, '|', 1, true)
    local maxb = tonumber(string.sub(x3, 1, sep - 1))
    local session = string.sub(x3, sep + 1)
    local bk = add(w, key, member, ts)
    local be = window_end(bk, w, ts, changed)
    local others = redis.call('ZRANGEBYSCORE', bk, '(' .. fmt(tonumber(be) - secs[w]), be)
    local ak = add(sw, member, session, ts)
    local own = current(ak, sw, ts, changed)
    local n = 0
    for _, other in ipairs(others) do
      if other ~= member then n = n + 1 end
    end
    local found = {}
    if n == maxb then
      local rest = {}
      for _, other in ipairs(others) do
        if other ~= member then rest[#rest + 1] = other end
      end
      for a = 1, #rest do
        for b = a + 1, #rest do
          local pair = rest[b] .. '|' .. rest[a]
          if rest[a] < rest[b] then pair = rest[a] .. '|' .. rest[b] end
          redis.call('ZREM', key_of(pw, pair), session)
        end
      end
    end
    if n + 1 <= maxb then
      for _, other in ipairs(others) do
        if other ~= member then
          local pair = other .. '|' .. member
          if member < other then pair = member .. '|' .. other end
          local pk = add(pw, pair, session, ts)
          local pch = changed
          found[#found + 1] = other
          found[#found + 1] = current(pk, pw, ts, pch)
          found[#found + 1] = current(key_of(sw, other), sw, ts, pch)
        end
      end
    end
    out[#out + 1] = {own, found}
  end
end
return out
"""


class RedisWindows:
    """Windows in Redis, shared by every monitor of the consumer group. Sorted sets keyed
    ``<prefix><window>:<key>``, member -> latest time seen; each key expires a minute after
    its window would be empty, so nothing needs sweeping. Operations run in Lua scripts of at
    most ``chunk`` operations (each holds Redis for about a millisecond), all sent in one
    pipeline."""

    def __init__(self, client: redis.Redis[Any], prefix: str, windows: Sequence[Window], *,
                 chunk: int = 256) -> None:
        self._client = client
        self._prefix = prefix
        self._index = {w.name: n for n, w in enumerate(windows, start=1)}
        self._header: list[str | int | float] = [prefix + "w:", len(windows)]
        for w in windows:
            self._header += [w.name, w.seconds, w.cap]
        self._script = client.register_script(_SCRIPT.replace("SAMPLE", str(SAMPLE)))
        self._chunk = chunk

    def _args(self, op: Op) -> list[str | int | float]:
        code = op[0]
        if code == ADD:
            return [ADD, self._index[op[1].name], op[2], op[3], repr(op[4]), op[5], 0, 0]
        if code == RECENT:
            return [RECENT, self._index[op[1].name], op[2], "", repr(op[4]), int(bool(op[5])),
                    0, 0]
        if code == COOCCUR:
            return [COOCCUR, self._index[op[1].name], op[2], op[3], repr(op[4]),
                    self._index[op[5].name], self._index[op[6].name], f"{op[8]}|{op[7]}"]
        raise ValueError(f"unknown window operation {code!r}")

    def run(self, ops: Sequence[Op]) -> list[Any]:
        if not ops:
            return []
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(ops), self._chunk):
            args: list[str | int | float] = list(self._header)
            for op in ops[start:start + self._chunk]:
                args += self._args(op)
            self._script(keys=[], args=args, client=pipe)
        replies = pipe.execute()
        results: list[Any] = []
        offset = 0
        for reply in replies:
            for raw in reply:
                results.append(self._result(ops[offset], raw))
                offset += 1
        return results

    @staticmethod
    def _result(op: Op, raw: Any) -> Any:
        code = op[0]
        if code == ADD:
            if isinstance(raw, list):
                return (int(raw[0]), [_text(m) for m in raw[1]])
            return int(raw)
        if code == RECENT:
            pairs = [(_text(raw[n]), float(raw[n + 1])) for n in range(0, len(raw), 2)]
            return pairs
        own, found = raw
        return int(own), [(_text(found[n]), int(found[n + 1]), int(found[n + 2]))
                          for n in range(0, len(found), 3)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
