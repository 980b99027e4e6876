"""Live mode: a scaled-down T1 agent against a running fairslot over HTTP, to see the real
server's guard answer a bot. Loopback targets only, so the simulator can never be pointed at
someone else's server; bounded in requests and in time.

What it does (each step's status codes are counted):

1. browsing flood: the bot reads the public hospital list every 0.02 s;
2. registration, log-in and a booking that skips the booking screen (no action token);
3. the same booking with a screen token fired at once (too early for a person);
4. log-in flood: wrong passwords for one username at bot speed.

Every request comes from the loopback address, so a human-paced client cannot be told apart
by address here; the in-process simulation is the place for who-gets-the-slots figures.
"""

from __future__ import annotations

import collections
import ipaddress
import random
import time
import urllib.parse

import httpx

__all__ = ["check_target", "run_live"]

MAX_REQUESTS = 1500
MAX_SECONDS = 60.0
_STEP = 0.02


def check_target(target: str) -> str:
    """The target URL without a trailing slash; a ``CliError`` unless it is loopback."""
    from fairslot.cli.main import CliError

    parsed = urllib.parse.urlsplit(target)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise CliError(f"--target must be a loopback http(s) URL, not {target!r}")
    return target.rstrip("/")


class _Budget:
    def __init__(self) -> None:
        self.sent = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def take(self) -> bool:
        if self.sent >= MAX_REQUESTS or time.monotonic() > self.deadline:
            return False
        self.sent += 1
        return True


def _flood(client: httpx.Client, budget: _Budget, count: int, method: str, path: str,
           **kwargs: object) -> collections.Counter[int]:
    seen: collections.Counter[int] = collections.Counter()
    for _ in range(count):
        if not budget.take():
            break
        seen[client.request(method, path, **kwargs).status_code] += 1  # type: ignore[arg-type]
        time.sleep(_STEP)
    return seen


def run_live(target: str, *, seed: int) -> str:
    """Run the live agent and return a short report."""
    from fairslot.cli.main import CliError

    base = check_target(target)
    rng = random.Random(seed)
    budget = _Budget()
    lines = [f"live run against {base} (at most {MAX_REQUESTS} requests, {MAX_SECONDS:.0f} s)"]
    try:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=5.0) as client:
            browse = _flood(client, budget, 650, "GET", "/hospitals")
            lines.append(f"browsing flood, 0.02 s a request: {dict(browse)}")
            name = f"simbot{rng.randrange(10**8):08d}"
            phone = f"+86139{rng.randrange(10**8):08d}"
            password = f"pw-{rng.randrange(10**12)}"
            made = client.post("/auth/register",
                               json={"username": name, "password": password, "phone": phone})
            lines.append(f"registration: {made.status_code}")
            if made.status_code == 201:
                token = client.post("/auth/login", json={"username": name,
                                                         "password": password})
                if token.status_code == 200:
                    auth = {"Authorization": f"Bearer {token.json()['token']}"}
                    booked = client.post("/bookings", headers=auth,
                                         json={"session_id": 1, "patient_id": 1})
                    lines.append(f"booking without the screen's token: {booked.status_code} "
                                 f"{booked.json().get('code', '')}")
                    screen = client.get("/sessions/1/booking-screen", headers=auth)
                    if screen.status_code == 200:
                        body = screen.json()
                        fast = client.post("/bookings", json={"session_id": 1, "patient_id": 1},
                                           headers={**auth, body["token_header"]:
                                                    body["action_token"]})
                        lines.append(f"booking with a token fired at once: {fast.status_code} "
                                     f"{fast.json().get('code', '')}")
                else:
                    lines.append(f"log-in: {token.status_code}")
            login = _flood(client, budget, 60, "POST", "/auth/login",
                           json={"username": name, "password": "wrong-password"})
            lines.append(f"log-in flood, wrong password: {dict(login)}")
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {type(exc).__name__}") from exc
    lines.append(f"requests sent: {budget.sent}")
    return "\n".join(lines)
