"""Where the guard keeps its counters and short-lived state: Redis, shared by every worker,
or this process's memory (embedded mode, and the fallback while Redis is unreachable).

``SharedState`` is what the rest of the guard talks to; ``RedisState`` and ``MemoryState``
implement the same operations; the Lua scripts are ``lua/*.lua``.
"""

from fairslot.guard.state.memory import MemoryState
from fairslot.guard.state.redis import RedisState
from fairslot.guard.state.shared import REDIS_ERRORS, SLOW_SECONDS_DOWN, SharedState
from fairslot.guard.state.types import Admission, LoginRecord, WindowHit

__all__ = [
    "REDIS_ERRORS",
    "SLOW_SECONDS_DOWN",
    "Admission",
    "LoginRecord",
    "MemoryState",
    "RedisState",
    "SharedState",
    "WindowHit",
]
