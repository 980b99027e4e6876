"""``fairslot serve``: run the web server (optionally with the seeded demo hospital)."""

from __future__ import annotations

import os

import typer
import uvicorn

from fairslot.cli.main import CliError

__all__ = ["register"]


WORKER_START_SECONDS = 600
"""How long a restarting worker may take to start (a large shared list takes minutes)."""


def serve(
    demo: bool = typer.Option(False, "--demo", help="migrate and seed the demo hospital on the "
                              "embedded SQLite database first"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on"),
    workers: int = typer.Option(1, min=1, max=64, help="worker processes (PostgreSQL only)"),
) -> None:
    """Serve the API and pages; the platform's events go to the monitor (on a thread of
    the server without Redis, to the stream for `fairslot monitor` with it:
    FAIRSLOT_MONITOR_MODE), and /metrics serves Prometheus metrics of every worker."""
    from fairslot.cli.common import load_settings

    settings = load_settings(demo=demo)
    if demo:
        from fairslot.cli.demo import print_logins, seed

        typer.echo("[3/4] migrating and seeding the demo hospital (a minute or two the first "
                   "time: a fortnight of history is made)...")
        report = seed()
        typer.echo("[4/4] demo hospital ready" + (" (seeded now)" if report.created else ""))
        print_logins()
    elif settings.secret_key is None:
        raise CliError("FAIRSLOT_SECRET_KEY is not set; generate one with `fairslot secret new`"
                       " (or try the demo: fairslot serve --demo)")
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise CliError("several workers need PostgreSQL; SQLite serves one worker")
    os.environ.setdefault("FAIRSLOT_SECRET_KEY", settings.secret_bytes().decode())
    if workers > 1:
        _metrics_dir()
    typer.echo(f"fairslot is serving on http://{host}:{port}/  (API docs: "
               f"http://{host}:{port}/api/v1/docs)")
    from fairslot.logs import uvicorn_log_config

    # A worker reads the shared list at its start before it serves (web.app): a restart
    # (SIGHUP) waits for that rather than uvicorn's 5 s before giving a worker up.
    uvicorn.run("fairslot.web.asgi:app", host=host, port=port, workers=workers,
                log_level=settings.log_level.lower(), proxy_headers=False, access_log=False,
                log_config=uvicorn_log_config(settings.log_level, settings.log_format),
                timeout_worker_healthcheck=WORKER_START_SECONDS)


def _metrics_dir() -> None:
    """Several workers: each writes its Prometheus counters into one directory, which
    ``/metrics`` adds up. Set before the workers start; emptied of an earlier run's files."""
    import pathlib
    import tempfile

    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if chosen:
        folder = pathlib.Path(chosen)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fairslot-metrics-")


def secret_new() -> None:
    """Print a new random master secret for FAIRSLOT_SECRET_KEY."""
    from fairslot.crypto import new_secret

    typer.echo(new_secret())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    secret_app = typer.Typer(help="The master secret.", no_args_is_help=True)
    secret_app.command("new")(secret_new)
    app.add_typer(secret_app, name="secret")
