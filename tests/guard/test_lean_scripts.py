"""The guard's script calls over plain connections (``guard.state.lean``) against the real
Redis: the same replies as redis-py, a script Redis does not know loaded on first use,
error replies and an unreachable Redis raised as redis-py's exceptions (which the guard's
fallback to memory catches), and the URL's database honoured."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
import redis
import redis.exceptions

from fairslot.clock import FixedClock
from fairslot.guard.state.redis import RedisState
from fairslot.guard.state.scripts import Script


def _script(body: str) -> Script:
    # A source no other test has loaded: Redis does not know its digest yet.
    source = f"-- {uuid.uuid4().hex}\n{body}"
    return Script("test", source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


def _with_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


def test_script_replies_match_redis_py_and_unknown_scripts_are_loaded(
        redis_url: str, prefix: str, clock: FixedClock) -> None:
    lua = _script("redis.call('SET', KEYS[1], ARGV[1]) "
                  "return {1, ARGV[1], {2, false}, redis.call('GET', KEYS[1])}")
    key = prefix + "lean"

    async def run() -> tuple[object, object]:
        state = RedisState(redis_url, prefix, clock)
        assert state._lean is not None  # a plain TCP URL takes the lean path
        try:
            lean = await state.run_script(lua, [key], ["v1"])
            plain = await state.client.evalsha(lua.sha, 1, key, "v1")  # type: ignore[no-untyped-call]
            return lean, plain
        finally:
            await state.close()

    lean, plain = asyncio.run(run())
    assert lean == plain == [1, b"v1", [2, None], b"v1"]


def test_an_error_reply_raises_redis_py_response_error(redis_url: str, prefix: str,
                                                        clock: FixedClock) -> None:
    lua = _script("return redis.error_reply('ERR refused by the script')")

    async def run() -> None:
        state = RedisState(redis_url, prefix, clock)
        try:
            with pytest.raises(redis.exceptions.ResponseError, match="refused by the script"):
                await state.run_script(lua, [prefix + "k"], [])
            # The connection stays usable after an error reply.
            assert await state.run_script(_script("return 7"), [prefix + "k"], []) == 7
        finally:
            await state.close()

    asyncio.run(run())


def test_the_urls_database_is_used(redis_url: str, prefix: str, clock: FixedClock) -> None:
    url = _with_db(redis_url, 3)
    key = prefix + "db3"
    lua = _script("redis.call('SET', KEYS[1], 'here') return 1")

    async def run() -> None:
        state = RedisState(url, prefix, clock)
        try:
            await state.run_script(lua, [key], [])
        finally:
            await state.close()

    asyncio.run(run())
    on_db3 = redis.Redis.from_url(url)
    on_db0 = redis.Redis.from_url(_with_db(redis_url, 0))
    try:
        assert on_db3.get(key) == b"here"
        assert on_db0.get(key) is None
    finally:
        on_db3.delete(key)


def test_an_unreachable_redis_raises_a_connection_error(clock: FixedClock) -> None:
    async def run() -> None:
        state = RedisState("redis://127.0.0.1:9/0", "x:", clock)
        try:
            with pytest.raises(redis.exceptions.ConnectionError):
                await state.run_script(_script("return 1"), ["x:k"], [])
        finally:
            await state.close()

    asyncio.run(run())


def test_a_call_cancelled_mid_reply_does_not_leave_its_connection_for_the_next(
        redis_url: str, prefix: str, clock: FixedClock) -> None:
    slow = _script("return 'slow'")
    fast = _script("return 'fast'")

    async def run() -> None:
        state = RedisState(redis_url, prefix, clock)
        try:
            await state.run_script(fast, [prefix + "k"], [])  # loads it, opens a connection
            await state.run_script(slow, [prefix + "k"], [])
            task = asyncio.ensure_future(state.run_script(slow, [prefix + "k"], []))
            for _ in range(3):  # sent, and waiting for its reply
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Had the cancelled call's connection gone back idle, this would read 'slow'.
            assert await state.run_script(fast, [prefix + "k"], []) == b"fast"
        finally:
            await state.close()

    asyncio.run(run())


def test_connections_redis_closed_while_idle_are_replaced_not_reported_as_an_outage(
        redis_url: str, prefix: str, clock: FixedClock) -> None:
    """After a Redis restart or its idle timeout, every idle connection is dead; the next
    calls must not fail (the guard would take Redis for down and refuse bookings)."""
    lua = _script("return 'ok'")
    admin = redis.Redis.from_url(redis_url)

    async def run() -> None:
        state = RedisState(redis_url, prefix, clock)
        assert state._lean is not None
        try:
            # Three connections open at once, then idle.
            await asyncio.gather(*(state.run_script(lua, [prefix + "k"], [])
                                   for _ in range(3)))
            idle = list(state._lean._idle)
            assert len(idle) >= 2
            for conn in idle:  # Redis drops each of them
                host, port = conn.writer.get_extra_info("sockname")[:2]
                admin.client_kill_filter(_type=None, addr=f"{host}:{port}")
            for _ in range(len(idle) + 1):
                assert await state.run_script(lua, [prefix + "k"], []) == b"ok"
        finally:
            await state.close()

    try:
        asyncio.run(run())
    finally:
        admin.close()
