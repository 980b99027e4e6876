"""The draw's keys and beacon source, as the settings say: the hospital's Ed25519 draw key,
the local chain's secret (demo and tests) and the ``BeaconSource`` for new rounds.

A key not given in the settings is made once with the OS CSPRNG and kept in the var/
directory (mode 0600), never in the repository; losing it means new rounds are signed by a
new key, which every verifier then sees in the documents."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx

from fairslot.beacon import BeaconSource, HttpRelaySource, LocalChainSource
from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.domain.draw.beacon import LOE_DEFAULT, LOE_QUICKNET, LocalChain
from fairslot.domain.draw.signing import DrawKey

__all__ = ["beacon_source", "draw_key", "local_chain", "previous_draw_keys"]


def _secret(value: str | None, path: Path) -> bytes:
    if value:
        raw = bytes.fromhex(value)
        if len(raw) != 32:
            raise ValueError(f"a draw key is 64 hex digits (for {path.name})")
        return raw
    if path.exists():
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(raw.hex() + "\n")
    return raw


def draw_key(settings: Settings, var_dir: Path) -> DrawKey:
    """The hospital's draw key, from the settings or var/draw-signing.key."""
    value = settings.draw_signing_key.get_secret_value() if settings.draw_signing_key else None
    return DrawKey(_secret(value, var_dir / "draw-signing.key"))


def previous_draw_keys(settings: Settings) -> list[DrawKey]:
    """The draw keys used before the current one (``FAIRSLOT_DRAW_PREVIOUS_SIGNING_KEYS``),
    for the rounds opened under them."""
    out = []
    for secret in settings.draw_previous_signing_keys:
        raw = bytes.fromhex(secret.get_secret_value())
        if len(raw) != 32:
            raise ValueError("a previous draw key is 64 hex digits")
        out.append(DrawKey(raw))
    return out


def local_chain(settings: Settings, var_dir: Path) -> LocalChain:
    value = (settings.draw_local_chain_key.get_secret_value()
             if settings.draw_local_chain_key else None)
    return LocalChain(_secret(value, var_dir / "draw-local-chain.key"),
                      genesis_time=settings.draw_local_chain_genesis)


def beacon_source(settings: Settings, var_dir: Path, clock: Clock,
                  client: httpx.Client) -> BeaconSource:
    """The source of beacons for the configured chain."""
    if settings.draw_chain == "local":
        return LocalChainSource(local_chain(settings, var_dir), clock)
    chain = LOE_QUICKNET if settings.draw_chain == "quicknet" else LOE_DEFAULT
    return HttpRelaySource(chain, settings.draw_chain_relays, client)
