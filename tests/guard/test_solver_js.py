"""The browser solver served by the app solves the guard's challenges (run under Node,
whose WebCrypto is the browsers' API)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fairslot.guard import Guard

from .conftest import make_settings

pytestmark = pytest.mark.anyio

SOLVER = Path(__file__).parents[2] / "src" / "fairslot" / "web" / "static" / "altcha-solver.js"


async def test_the_javascript_solver_answers_a_challenge_the_guard_accepts() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed to run the solver (apt-get install nodejs)"
    guard = Guard(make_settings(redis_url=None, guard_pow_base_maxnumber=20_000))
    challenge = await guard.new_challenge("booking", account_id="mother", risk=1)
    script = (
        SOLVER.read_text()
        + f"\nFairslotPow.solve({json.dumps(challenge)}).then(p => console.log(p));"
    )
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30,
                            check=True)
    payload = result.stdout.strip()
    subject = guard.keys.pseudonym("account", "mother")
    first = await guard.challenges.redeem(payload, subject, "booking")
    again = await guard.challenges.redeem(payload, subject, "booking")
    assert (first.ok, again.reason) == (True, "challenge_replayed")
