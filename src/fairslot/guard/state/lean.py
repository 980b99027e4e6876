"""Plain connections for the guard's script calls, the two every guarded action makes
(the admission, the release of the one-in-flight slot).

redis-py's asyncio client spends about 100 µs of CPU a command around the command itself
(its pool's lock and condition, the connection's checks, its timeout wrapper and reply
handling): measured in process, the two script calls of a booking took 0.7 ms of the event
loop's CPU through it, a sixth of a booking's server CPU. Here a call writes one encoded
``EVALSHA`` on an idle connection of its own and parses the reply with hiredis (which
redis-py itself uses when installed). Errors are redis-py's exception types, so
``SharedState`` falls back to memory and retries a slow call exactly as before.

Only plain TCP URLs without TLS use this (``LeanScripts.for_url`` returns None otherwise,
and ``RedisState`` keeps using redis-py for them); every other command of the guard goes
through redis-py as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import hiredis
import redis.asyncio
import redis.exceptions

__all__ = ["LeanScripts"]


def _encode(args: list[str | bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Conn:
    __slots__ = ("parser", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = hiredis.Reader()

    async def call(self, payload: bytes) -> Any:
        self.writer.write(payload)
        parser = self.parser
        while True:
            reply = parser.gets()
            if reply is not False:
                return reply
            data = await self.reader.read(65536)
            if not data:
                raise redis.exceptions.ConnectionError("Connection closed by server.")
            parser.feed(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class LeanScripts:
    """``evalsha`` over up to ``size`` idle connections of this event loop's own. A call
    that finds none idle while ``size`` are busy waits for none: it returns None from
    ``try_evalsha`` and the caller uses redis-py."""

    def __init__(self, host: str, port: int, db: int, username: str | None,
                 password: str | None, *, timeout: float, connect_timeout: float,
                 size: int = 8) -> None:
        self._host = host
        self._port = port
        self._setup: list[bytes] = []
        if password:
            auth: list[str | bytes] = ["AUTH", *([username] if username else []), password]
            self._setup.append(_encode(auth))
        if db:
            self._setup.append(_encode(["SELECT", str(db)]))
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._size = size
        self._idle: list[_Conn] = []
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_url(cls, pool: redis.asyncio.ConnectionPool[Any], *, timeout: float,
                connect_timeout: float) -> LeanScripts | None:
        """For a redis-py pool of plain TCP connections; None for TLS or a Unix socket."""
        if pool.connection_class is not redis.asyncio.Connection:
            return None
        kw = pool.connection_kwargs
        return cls(str(kw.get("host", "localhost")), int(kw.get("port", 6379)),
                   int(kw.get("db", 0) or 0), kw.get("username"), kw.get("password"),
                   timeout=timeout, connect_timeout=connect_timeout)

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port)
        except TimeoutError as exc:
            raise redis.exceptions.TimeoutError("Timeout connecting to server") from exc
        except OSError as exc:
            raise redis.exceptions.ConnectionError(
                f"Error connecting to {self._host}:{self._port}: {exc}") from exc
        conn = _Conn(reader, writer)
        for command in self._setup:
            reply = await self._send(conn, command)
            if isinstance(reply, redis.exceptions.ResponseError | hiredis.ReplyError):
                conn.close()
                raise redis.exceptions.AuthenticationError(str(reply))
        return conn

    async def _send(self, conn: _Conn, payload: bytes) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await conn.call(payload)
        except TimeoutError as exc:
            conn.close()
            raise redis.exceptions.TimeoutError("Timeout reading from socket") from exc
        except (OSError, redis.exceptions.ConnectionError) as exc:
            conn.close()
            if isinstance(exc, redis.exceptions.ConnectionError):
                raise
            raise redis.exceptions.ConnectionError(f"Error talking to Redis: {exc}") from exc
        except BaseException:
            conn.close()  # cancelled mid-reply: the connection's stream is unknown
            raise

    async def evalsha(self, sha: str, keys: list[str], args: list[str]) -> Any:
        """The script's reply; ``redis.exceptions.NoScriptError`` if Redis lacks it, and
        ``ResponseError`` for any other error reply. Raises ``LookupError`` when every
        connection is busy."""
        payload = _encode(["EVALSHA", sha, str(len(keys)), *keys, *args])
        while True:
            reused = bool(self._idle)
            conn = await self._take()
            try:
                reply = await self._send(conn, payload)
            except redis.exceptions.ConnectionError:
                self._open -= 1
                if reused:
                    # Redis closed it while it was idle (a restart, its idle timeout): the
                    # command never ran, so once more, on a fresh connection if none other
                    # is idle. A call on a new connection that fails is Redis failing.
                    continue
                raise
            except BaseException:
                self._open -= 1
                raise
            break
        self._idle.append(conn)
        if isinstance(reply, hiredis.ReplyError):
            message = str(reply)
            if message.startswith("NOSCRIPT"):
                raise redis.exceptions.NoScriptError(message)
            raise redis.exceptions.ResponseError(message)
        return reply

    async def _take(self) -> _Conn:
        """An idle connection, or a new one while fewer than ``size`` are open;
        ``LookupError`` when every one is busy."""
        if self._idle:
            return self._idle.pop()
        if self._open >= self._size:
            raise LookupError("no idle connection")
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            raise

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self._open = 0
