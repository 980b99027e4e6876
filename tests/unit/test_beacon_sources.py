"""Beacon sources: the local chain releases a round only at its time; the HTTP relay
fetcher reads drand's v1 API from a relay served here on loopback (never the internet),
and what a lying relay returns fails the offline check."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from fairslot.beacon import HttpRelaySource, LocalChainSource
from fairslot.clock import FixedClock
from fairslot.domain.draw.beacon import verify_beacon
from fairslot.domain.draw.examples import example_chain

CHAIN = example_chain()
NEWEST = 9_000_000  # the relay has produced rounds up to this one


def serve(lie: bool) -> tuple[ThreadingHTTPServer, str]:
    prefix = f"/{CHAIN.chain.hash.hex()}/public/"

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith(prefix) or not self.path[len(prefix):].isdigit():
                self.send_error(404)
                return
            number = int(self.path[len(prefix):])
            if number > NEWEST:
                self.send_error(425 if lie else 404)
                return
            beacon = CHAIN.sign(number + 1 if lie else number)
            body = json.dumps({"round": number, "signature": beacon.signature.hex(),
                               "randomness": beacon.randomness.hex()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def relays() -> Iterator[tuple[str, str]]:
    honest, honest_url = serve(lie=False)
    liar, liar_url = serve(lie=True)
    try:
        yield honest_url, liar_url
    finally:
        for server in (honest, liar):
            server.shutdown()
            server.server_close()


def test_the_relay_fetcher_returns_a_beacon_that_verifies(relays: tuple[str, str]) -> None:
    honest, _ = relays
    with httpx.Client(timeout=5) as client:
        source = HttpRelaySource(CHAIN.chain, ["http://127.0.0.1:9/", honest], client)
        beacon = source.fetch(NEWEST)
        assert beacon is not None and beacon.round == NEWEST
        assert verify_beacon(CHAIN.chain, beacon)
        assert source.fetch(NEWEST + 1) is None  # not produced yet: the round waits


def test_a_lying_relay_is_caught_by_the_offline_check(relays: tuple[str, str]) -> None:
    _, liar = relays
    with httpx.Client(timeout=5) as client:
        beacon = HttpRelaySource(CHAIN.chain, [liar], client).fetch(NEWEST)
    assert beacon is not None
    assert not verify_beacon(CHAIN.chain, beacon)


def test_the_local_chain_releases_a_round_only_at_its_time() -> None:
    number = 5_000
    at = dt.datetime.fromtimestamp(CHAIN.chain.round_time(number), dt.UTC)
    clock = FixedClock(at - dt.timedelta(seconds=1))
    source = LocalChainSource(CHAIN, clock)
    assert source.fetch(number) is None
    clock.advance(1)
    beacon = source.fetch(number)
    assert beacon is not None and verify_beacon(CHAIN.chain, beacon)


def test_keys_are_made_once_in_var_and_reused(tmp_path: pathlib.Path) -> None:
    from fairslot.config import Settings
    from fairslot.draw_keys import beacon_source, draw_key, local_chain

    settings = Settings(draw_chain="local")
    first = draw_key(settings, tmp_path)
    assert draw_key(settings, tmp_path).public == first.public
    assert oct((tmp_path / "draw-signing.key").stat().st_mode & 0o777) == "0o600"
    chain = local_chain(settings, tmp_path).chain
    with httpx.Client() as client:
        source = beacon_source(settings, tmp_path, FixedClock(dt.datetime.now(dt.UTC)), client)
    assert source.chain == chain
    given = Settings(draw_signing_key="11" * 32)
    assert draw_key(given, tmp_path).public != first.public
