"""The sliding windows: set semantics (what makes redelivery harmless), expiry, late events,
and the Redis store giving exactly the memory store's answers."""

from __future__ import annotations

import random
from typing import Any

import pytest
import redis

from fairslot.monitoring.windows import (
    ADD,
    COOCCUR,
    RECENT,
    MemoryWindows,
    Op,
    RedisWindows,
    Window,
)

MINUTE = Window("minute", 60)
SMALL = Window("small", 3600, cap=3)


def add(store: MemoryWindows, window: Window, key: str, member: str, ts: float,
        sample_at: int = 0) -> Any:
    return store.run([(ADD, window, key, member, ts, sample_at)])[0]


def test_an_event_delivered_again_adds_nothing() -> None:
    store = MemoryWindows()
    assert add(store, MINUTE, "k", "e1", 10.0) == 1
    assert add(store, MINUTE, "k", "e2", 11.0) == 2
    # Seen before: it counts what it counted the first time.
    assert add(store, MINUTE, "k", "e1", 10.0) == 1
    assert add(store, MINUTE, "k", "e2", 11.0) == 2
    assert add(store, MINUTE, "k", "e3", 12.0) == 3


def test_members_older_than_the_window_are_forgotten() -> None:
    store = MemoryWindows()
    for n in range(5):
        add(store, MINUTE, "k", f"e{n}", 10.0 + n)
    assert add(store, MINUTE, "k", "late", 71.5) == 4  # e0 (10) and e1 (11) are gone
    assert add(store, MINUTE, "other", "x", 71.5) == 1


def test_a_member_seen_again_stays_until_a_window_after_its_last_sighting() -> None:
    store = MemoryWindows()
    add(store, MINUTE, "k", "patient", 0.0)
    add(store, MINUTE, "k", "patient", 50.0)
    assert add(store, MINUTE, "k", "other", 100.0) == 2
    assert add(store, MINUTE, "k", "other", 111.0) == 1


def test_a_late_event_is_counted_with_the_window_it_falls_in() -> None:
    store = MemoryWindows()
    for n in range(4):
        add(store, MINUTE, "k", f"e{n}", 100.0 + n)
    # Taken over from a monitor that died: the others of its window were counted first.
    assert add(store, MINUTE, "k", "late", 101.5) == 5
    # Delivered once more, it changes nothing and counts what came up to its time.
    assert add(store, MINUTE, "k", "late", 101.5) == 3


def test_an_event_later_than_a_whole_window_counts_what_came_before_it() -> None:
    store = MemoryWindows()
    add(store, MINUTE, "k", "old", 0.0)
    add(store, MINUTE, "k", "new", 200.0)
    assert add(store, MINUTE, "k", "very-late", 30.0) == 1


def test_a_key_keeps_at_most_its_cap_of_members() -> None:
    store = MemoryWindows()
    for n in range(5):
        count = add(store, SMALL, "k", f"m{n}", float(n))
    assert count == 3
    recent = store.run([(RECENT, SMALL, "k", "", 10.0, 0)])[0]
    assert [m for m, _ in recent] == ["m2", "m3", "m4"]


def test_reaching_the_sample_threshold_returns_the_newest_members() -> None:
    store = MemoryWindows()
    assert add(store, MINUTE, "k", "a", 1.0, sample_at=3) == 1
    add(store, MINUTE, "k", "b", 2.0, sample_at=3)
    assert add(store, MINUTE, "k", "c", 3.0, sample_at=3) == (3, ["c", "b", "a"])


def test_sweeping_forgets_keys_whose_members_all_expired() -> None:
    store = MemoryWindows()
    add(store, MINUTE, "old", "x", 0.0)
    add(store, MINUTE, "new", "y", 1000.0)
    assert store.sweep() == 1
    assert store.keys(MINUTE) == 1


def test_a_window_the_sweep_skipped_is_still_swept_once_its_keys_can_expire() -> None:
    # The sweep skips a window none of whose keys can have left it yet; the bound it keeps
    # for that window must survive the skip.
    store = MemoryWindows()
    long = Window("long", 600)
    add(store, long, "k", "m", 0.0)
    add(store, MINUTE, "x", "m", 100.0)
    assert store.sweep() == 0
    add(store, MINUTE, "x", "m2", 700.0)
    assert store.sweep() == 1
    assert store.keys(long) == 0
    assert store.keys(MINUTE) == 1


def _random_ops(rng: random.Random, windows: list[Window], n: int) -> list[Op]:
    ops: list[Op] = []
    ts = 1_772_436_600.0
    buckets, sessions, pairs = Window("b", 660, cap=6), Window("s", 86400), Window("p", 86400)
    windows += [buckets, sessions, pairs]
    for _ in range(n):
        ts += rng.choice([0.0, 0.25, 1.5, 7.0, 45.0])
        roll = rng.random()
        window = rng.choice(windows[:2])
        key = f"k{rng.randrange(4)}"
        if roll < 0.6:
            ops.append((ADD, window, key, f"m{rng.randrange(12)}", ts, rng.choice([0, 3])))
        elif roll < 0.7 and ops:
            ops.append(ops[rng.randrange(len(ops))])  # a redelivered operation
        elif roll < 0.85:
            ops.append((RECENT, window, key, "", ts, rng.choice([0, 1])))
        else:
            ops.append((COOCCUR, buckets, f"s{rng.randrange(3)}:0", f"a{rng.randrange(8)}",
                        ts, sessions, pairs, f"s{rng.randrange(3)}", 5))
    return ops


@pytest.mark.parametrize("seed", [20260302, 5, 17])
def test_redis_windows_answer_exactly_as_memory_windows_do(
        redis_client: redis.Redis[Any], prefix: str, seed: int) -> None:
    # Late and redelivered operations, ties, caps and lockstep buckets included.
    rng = random.Random(seed)
    windows = [MINUTE, SMALL]
    ops = _random_ops(rng, windows, 1500)
    in_memory = MemoryWindows().run(ops)
    in_redis = RedisWindows(redis_client, f"{prefix}{seed}:", windows, chunk=37).run(ops)
    assert in_redis == in_memory
    assert any(isinstance(r, tuple) and isinstance(r[1], list) and r[1] for r in in_memory)
    assert any(isinstance(r, tuple) and isinstance(r[1], list) and r[1]
               and isinstance(r[1][0], tuple) for r in in_memory)


def test_redis_window_keys_expire_after_their_window(redis_client: redis.Redis[Any],
                                                     prefix: str) -> None:
    store = RedisWindows(redis_client, prefix, [MINUTE])
    store.run([(ADD, MINUTE, "k", "m", 1000.0, 0)])
    ttl = redis_client.pttl(f"{prefix}w:minute:k")
    assert 60_000 < ttl <= 120_000
