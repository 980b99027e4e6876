"""The one source of randomness for rules that need it (round seeds, entry refs, leftover
re-open times, tokens, challenges). Production uses the operating system's CSPRNG; the
simulator injects a seeded generator so that the same seed gives the same run. Nothing in
fairslot that decides who gets a slot calls ``secrets`` or ``random`` on its own."""

from __future__ import annotations

import random
import secrets
from typing import Protocol

__all__ = ["Randomness", "SeededRandomness", "SystemRandomness"]


class Randomness(Protocol):
    def token_bytes(self, n: int) -> bytes:
        """``n`` unpredictable bytes."""
        ...

    def token_hex(self, n: int) -> str:
        """``n`` unpredictable bytes as lower-case hex."""
        ...

    def token_urlsafe(self, n: int) -> str:
        """``n`` unpredictable bytes as URL-safe base64 text."""
        ...

    def randbelow(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        ...

    def uniform(self, low: float, high: float) -> float:
        """A uniform float in ``[low, high]``."""
        ...


class SystemRandomness:
    """The operating system's CSPRNG: what production must use."""

    _float = secrets.SystemRandom()

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)

    def token_hex(self, n: int) -> str:
        return secrets.token_hex(n)

    def token_urlsafe(self, n: int) -> str:
        return secrets.token_urlsafe(n)

    def randbelow(self, n: int) -> int:
        return secrets.randbelow(n)

    def uniform(self, low: float, high: float) -> float:
        return self._float.uniform(low, high)


class SeededRandomness:
    """A seeded, reproducible generator for the simulator and tests. Predictable by design:
    never wire it into a server."""

    def __init__(self, seed: int | str | bytes) -> None:
        self._rng = random.Random(seed)

    def token_bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n)

    def token_hex(self, n: int) -> str:
        return self._rng.randbytes(n).hex()

    def token_urlsafe(self, n: int) -> str:
        import base64

        return base64.urlsafe_b64encode(self._rng.randbytes(n)).rstrip(b"=").decode()

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)

    def uniform(self, low: float, high: float) -> float:
        return self._rng.uniform(low, high)
