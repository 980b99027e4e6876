"""Live mode: drive a running fairslot over HTTP. Loopback targets only, so the simulator
can never be pointed at someone else's server. Not yet implemented beyond the checks."""

from __future__ import annotations

import ipaddress
import urllib.parse

import httpx

__all__ = ["check_target", "run_live"]


def check_target(target: str) -> str:
    from fairslot.cli.main import CliError

    parsed = urllib.parse.urlsplit(target)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise CliError(f"--target must be a loopback http URL, not {target!r}")
    return target.rstrip("/")


def run_live(target: str, *, seed: int) -> str:
    from fairslot.cli.main import CliError

    base = check_target(target)
    try:
        response = httpx.get(f"{base}/healthz", timeout=3.0)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {type(exc).__name__}") from exc
    raise CliError(f"{base} answers ({response.status_code}), but live mode's agents are not "
                   "written yet; use the in-process simulation")
