"""A real fairslot server for browser tests: a seed script run in a process of its own on a
fresh SQLite database, then uvicorn on a free loopback port, stopped when the test is done."""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping

from tests.conftest import PASSWORD, TEST_SECRET, wait_until_serving

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(folder: pathlib.Path, settings: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """The environment of a browser test's server (and of any process that works on its
    database beside it, as a second worker would): ``settings`` laid over the tests' own."""
    env = {**os.environ, "FAIRSLOT_SECRET_KEY": TEST_SECRET,
           "FAIRSLOT_DATABASE_URL": f"sqlite:///{folder / 'fairslot.db'}",
           "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_GUARD_DEVICE_COOKIE_SECURE": "false",
           "FAIRSLOT_SESSION_COOKIE_SECURE": "false", "PYTHONPATH": str(ROOT / "src"),
           **(settings or {})}
    env.pop("FAIRSLOT_REDIS_URL", None)
    return env


@contextlib.contextmanager
def serve(folder: pathlib.Path, seed: str, settings: Mapping[str, str] | None = None
          ) -> Iterator[tuple[str, str]]:
    """Run ``seed`` (with ``{password}`` filled in) against a new database in ``folder``,
    then serve it; yields the server's URL and what the seed printed. ``settings`` are
    FAIRSLOT_* variables laid over the browser tests' own."""
    env = server_env(folder, settings)
    seeded = subprocess.run([sys.executable, "-c", seed.format(password=PASSWORD)], env=env,
                            cwd=folder, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    url = f"http://127.0.0.1:{free_port()}"
    with (folder / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "fairslot.web.app:create_app",
             "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--log-level", "warning"],
            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(url, proc, seconds=30, log=folder / "server.log")
            yield url, seeded.stdout
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # never leave a server behind, but say it did not stop
                proc.wait()
                raise
