"""``fairslot simulate``: play a release under the fcfs baseline and/or fairslot's fair
release, with the attack catalogue as agents, and report who ended up with the hot slots
(docs/simulation.md)."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Annotated

import typer

from fairslot.domain.errors import FairslotError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the main app."""

    @app.command("simulate")
    def simulate(
        scenario: Annotated[str, typer.Option(help="seeds, tiny, a scenario .toml file, or "
                                              "ring-moves (a ring moves from one hospital to "
                                              "the next, with and without the consortium)")]
        = "seeds",
        policy: Annotated[str, typer.Option(help="fcfs, fairslot or both")] = "both",
        seed: Annotated[int, typer.Option(help="random seed: same seed, same result")] = 1,
        json_out: Annotated[pathlib.Path | None, typer.Option(
            "--json", help="write the metrics and timelines as JSON")] = None,
        plot: Annotated[pathlib.Path | None, typer.Option(
            help="write a PNG of who held the hot slots over time")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="key=value: a defence on or off (draw, waitlist, windows, quotas, "
            "credit, guard, realname, identity, desk; fcfs runs with only realname on, "
            "fairslot with all), "
            "a scenario field (t1.bots=4) or a setting")] = None,
        target: Annotated[str | None, typer.Option(
            help="drive a running fairslot over HTTP (loopback only)")] = None,
        prepare_live: Annotated[bool, typer.Option(
            "--prepare-live", help="migrate FAIRSLOT_DATABASE_URL and give it an open fcfs "
            "session, the tactic agents' sessions and draw rounds, the live agents' "
            "residents and an operator account, for a later --target run")] = False,
        tactics: Annotated[bool, typer.Option(
            "--tactics", help="with --target: the ring tactics T4, T5, T6, T8, T9 and a "
            "draw entrant, with an operator (--operator, password in "
            "FAIRSLOT_LIVE_OPERATOR_PASSWORD) timing each tactic's first alert")] = False,
        operator: Annotated[str | None, typer.Option(
            help="the operator account --prepare-live printed (for --tactics)")] = None,
        live: Annotated[bool, typer.Option(
            "--live", help="start a throw-away server (fairslot serve --workers N) and a "
            "fairslot monitor on FAIRSLOT_DATABASE_URL (PostgreSQL; migrated and prepared: "
            "use an empty database) and FAIRSLOT_REDIS_URL, run the tactic agents against "
            "it, and stop both")] = False,
        workers: Annotated[int, typer.Option(min=1, max=16,
                                             help="server workers for --live")] = 4,
    ) -> None:
        """Simulate a release with genuine patients and scalper rings against the real
        allocation, quota, credit and guard code; print the metrics per policy."""
        from fairslot.cli.main import CliError
        from fairslot.simulation.report import render_table, write_plot
        from fairslot.simulation.scenario import apply_overrides, load_scenario, parse_overrides

        if policy not in ("fcfs", "fairslot", "both"):
            raise CliError(f"--policy must be fcfs, fairslot or both, not {policy!r}")
        if prepare_live:
            from fairslot.cli.common import load_platform
            from fairslot.cli.db import migrate_url
            from fairslot.simulation.live import prepare_target

            platform = load_platform()
            migrate_url(platform.settings.database_url)
            from fairslot.simulation.live_tactics import prepare_tactics

            try:
                session_id = prepare_target(platform, seed)
                op_name, op_password = prepare_tactics(platform, seed)
            finally:
                platform.engine.dispose()
            typer.echo(f"live target prepared: fcfs session {session_id} open for booking; "
                       f"tactic sessions and draw rounds ready (run --tactics within 10 "
                       f"minutes); operator {op_name}, password {op_password}")
            return
        if live:
            import os

            from fairslot.cli.common import load_settings
            from fairslot.simulation.live_tactics import run_tactics, serve_stack

            settings = load_settings()
            if not settings.redis_url or settings.secret_key is None:
                raise CliError("--live needs FAIRSLOT_REDIS_URL (the monitor's stream) and "
                               "FAIRSLOT_SECRET_KEY")
            with serve_stack(settings.database_url, settings.redis_url, workers=workers,
                             secret=settings.secret_key.get_secret_value(),
                             seed=seed) as (base, op_name, op_password):
                load = os.getloadavg()[0]
                report = run_tactics(base, operator=op_name, password=op_password, seed=seed)
            typer.echo(report.render())
            typer.echo(f"{workers} workers and one `fairslot monitor run`; load average "
                       f"{load:.1f} -> {os.getloadavg()[0]:.1f}")
            return
        if scenario == "ring-moves":
            from fairslot.simulation.ring_moves import render_ring_moves, run_ring_moves

            started = time.perf_counter()
            moves = [run_ring_moves(seed, consortium=on) for on in (False, True)]
            typer.echo(render_ring_moves(moves, time.perf_counter() - started))
            if json_out is not None:
                json_out.write_text(json.dumps([m.as_dict() for m in moves], indent=2) + "\n",
                                    encoding="utf-8")
            return
        if target is not None and tactics:
            import os

            from fairslot.simulation.live_tactics import run_tactics

            password = os.environ.get("FAIRSLOT_LIVE_OPERATOR_PASSWORD")
            if operator is None or not password:
                raise CliError("--tactics needs --operator and FAIRSLOT_LIVE_OPERATOR_PASSWORD "
                               "(printed by --prepare-live)")
            typer.echo(run_tactics(target, operator=operator, password=password,
                                   seed=seed).render())
            return
        if target is not None:
            from fairslot.simulation.live import run_live

            typer.echo(run_live(target, seed=seed))
            return
        try:
            sc = apply_overrides(load_scenario(scenario), parse_overrides(set_ or []))
        except FairslotError as exc:
            raise CliError(exc.detail) from exc
        from fairslot.simulation.engine import Simulation

        policies = ["fcfs", "fairslot"] if policy == "both" else [policy]
        started, cpu = time.perf_counter(), time.process_time()
        results = {p: Simulation(sc, p, seed).run() for p in policies}
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        typer.echo(render_table(sc.name, seed, results, elapsed, cpu))
        if json_out is not None:
            doc = {"scenario": sc.name, "seed": seed, "switches": sc.defences,
                   "settings": sc.settings, "wall_s": round(elapsed, 2),
                   "cpu_s": round(cpu, 2),
                   "policies": {p: r.as_dict() for p, r in results.items()}}
            json_out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
        if plot is not None:
            write_plot(results, plot)
