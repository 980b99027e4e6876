"""Where the scheduler gets a round's drand beacon: a ``BeaconSource``.

Two sources, chosen by configuration (``FAIRSLOT_DRAW_CHAIN``):

- ``LocalChainSource``: the project's own one-node chain (``domain.draw.beacon.LocalChain``)
  for the demo and tests. It releases round ``r`` only once the injected clock has reached
  the round's time, as a real chain would, so a draw waits for it the same way.
- ``HttpRelaySource``: fetches ``GET {relay}/{chain hash}/public/{round}`` from drand HTTP
  relays with ``httpx``, trying each relay in turn.

A source only fetches; it is never trusted. The caller checks every beacon against the
chain's public key (``domain.draw.beacon.verify_beacon``) before using it, so a relay that
lies is caught, and a source returns ``None`` (not an error) while the round is not out
yet or no relay answers: the round waits and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import httpx

from fairslot.clock import Clock
from fairslot.domain.draw.beacon import SCHEME_CHAINED, Beacon, Chain, LocalChain

__all__ = ["BeaconSource", "HttpRelaySource", "LocalChainSource"]

log = logging.getLogger(__name__)


class BeaconSource(Protocol):
    chain: Chain

    def fetch(self, round_: int) -> Beacon | None:
        """The beacon of ``round_``, or ``None`` while it is not available."""
        ...


class LocalChainSource:
    """The local chain, releasing each round at its time on ``clock``."""

    def __init__(self, local: LocalChain, clock: Clock) -> None:
        self._local = local
        self._clock = clock
        self.chain = local.chain
        self._signed: dict[int, Beacon] = {}

    def fetch(self, round_: int) -> Beacon | None:
        if self._clock.now().timestamp() < self.chain.round_time(round_):
            return None
        # Rounds closing together share a beacon; signing one takes a fraction of a second
        # in pure Python, so the last few are kept.
        beacon = self._signed.get(round_)
        if beacon is None:
            beacon = self._local.sign(round_)
            if len(self._signed) >= 64:
                self._signed.pop(next(iter(self._signed)))
            self._signed[round_] = beacon
        return beacon


class HttpRelaySource:
    """drand HTTP relays (the v1 API every relay serves). ``client`` is injected so that
    the scheduler controls time-outs and tests can point it at a relay they serve."""

    def __init__(self, chain: Chain, relays: Sequence[str], client: httpx.Client) -> None:
        if not relays:
            raise ValueError("give at least one relay URL")
        self.chain = chain
        self._relays = [r.rstrip("/") for r in relays]
        self._client = client

    def fetch(self, round_: int) -> Beacon | None:
        for relay in self._relays:
            url = f"{relay}/{self.chain.hash.hex()}/public/{round_}"
            try:
                response = self._client.get(url)
            except httpx.HTTPError as exc:
                log.warning("drand relay %s did not answer: %s", relay, exc)
                continue
            if response.status_code in (404, 425):  # not produced yet
                continue
            if response.status_code != 200:
                log.warning("drand relay %s answered %s", relay, response.status_code)
                continue
            beacon = self._parse(response, round_)
            if beacon is not None:
                return beacon
        return None

    def _parse(self, response: httpx.Response, round_: int) -> Beacon | None:
        try:
            data = response.json()
            signature = bytes.fromhex(data["signature"])
            previous = data.get("previous_signature")
            if int(data["round"]) != round_:
                return None
        except (ValueError, KeyError, TypeError):
            log.warning("drand relay answer for round %s is not a beacon", round_)
            return None
        chained = self.chain.scheme == SCHEME_CHAINED
        try:
            prev = bytes.fromhex(previous) if chained and isinstance(previous, str) else None
        except ValueError:
            return None
        return Beacon(round=round_, signature=signature, previous_signature=prev)
