"""``fairslot monitor``: run monitors against the Redis event stream, work on alerts and
decisions, and replay records through the scenarios.

``run`` joins the stream's consumer group; start as many as the load needs (on one machine
or several): they share the events and the window state in Redis, and a monitor that dies
leaves its unacknowledged events to the others. Without Redis (embedded mode) the monitor
runs inside ``fairslot serve`` instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from fairslot.cli.main import CliError
from fairslot.config import Settings

__all__ = ["register"]

_log = logging.getLogger("fairslot.monitoring")


def _settings() -> Settings:
    from fairslot.cli.common import load_settings

    return load_settings()


def _store(settings: Settings) -> Any:
    from fairslot.monitoring.sql_store import SqlMonitorStore
    from fairslot.storage.database import make_engine

    return SqlMonitorStore(make_engine(settings.database_url, pool_size=2))


def _monitor(settings: Settings, **kwargs: Any) -> Any:
    """A monitor for work by hand (alerts, decisions): memory windows, no notifications."""
    from fairslot.clock import SystemClock
    from fairslot.monitoring.assemble import make_monitor
    from fairslot.monitoring.decisions import NullDecisionSink
    from fairslot.monitoring.enforce import standalone_guard_sink

    clock = SystemClock()
    # Decided or lifted by hand: in the guard's shared book at once when there is a Redis;
    # in embedded mode the server applies what is in force when it starts.
    sink = standalone_guard_sink(settings, clock) or NullDecisionSink()
    try:
        return make_monitor(settings, clock=clock, sink=sink,
                            store=_store(settings), notify=False, **kwargs)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)


def run_command(
    consumer: Annotated[str | None, typer.Option(
        help="This monitor's name in the consumer group (default: host and process id). "
        "A monitor restarted under the same name first finishes its own pending events.")
    ] = None,
    batch: Annotated[int | None, typer.Option(
        help="Events per batch (default FAIRSLOT_MONITOR_BATCH).", min=1, max=10_000)] = None,
    stop_when_idle: Annotated[float | None, typer.Option(
        help="Exit after this many seconds without events (for draining a backlog).",
        min=0.1)] = None,
) -> None:
    """Run one monitor of the consumer group on the Redis stream until Ctrl-C or SIGTERM."""
    import redis

    from fairslot.clock import SystemClock
    from fairslot.monitoring.assemble import make_monitor
    from fairslot.monitoring.decisions import NullDecisionSink
    from fairslot.monitoring.enforce import standalone_guard_sink
    from fairslot.monitoring.runner import MonitorLoop, tune_gc
    from fairslot.monitoring.stream import RedisStreamConsumer
    from fairslot.storage.database import make_engine

    tune_gc()
    settings = _settings()
    from fairslot.logs import configure as configure_logs

    configure_logs(settings.log_level, settings.log_format)
    redis_url = settings.monitor_redis_url or settings.redis_url
    if not redis_url:
        raise CliError("FAIRSLOT_REDIS_URL is not set: without Redis the monitor runs inside "
                       "`fairslot serve` (embedded mode)")
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2,
                                  socket_timeout=max(5.0, settings.monitor_block_ms / 500))
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CliError(f"Redis is unreachable ({type(exc).__name__})") from None
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    clock = SystemClock()
    guard_sink = standalone_guard_sink(settings, clock)
    try:
        monitor = make_monitor(settings, clock=clock, sink=guard_sink or NullDecisionSink(),
                               db=make_engine(settings.database_url, pool_size=2),
                               redis_client=client)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    source = RedisStreamConsumer(client, settings.monitor_stream_key, settings.monitor_group,
                                 name, claim_idle_seconds=settings.monitor_claim_idle_seconds,
                                 claim_every=min(5.0, settings.monitor_claim_idle_seconds / 2))
    source.ensure_group()
    loop = MonitorLoop(source, monitor, batch=batch or settings.monitor_batch,
                       block_seconds=settings.monitor_block_ms / 1000)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if monitor.notifications is not None:
        monitor.notifications.start()
    if guard_sink is not None:
        # Decisions in force go (again) to the guard's book every web worker reads.
        guard_sink.reapply(monitor.store.decisions(active_at=clock.now()))
    _log.info("monitor %s reading %s as group %s; decisions go to the database and %s",
              name, settings.monitor_stream_key, settings.monitor_group,
              "the guard" if guard_sink is not None else "no guard (FAIRSLOT_REDIS_URL unset)")
    idle_since = time.monotonic()
    next_housekeeping = time.monotonic() + 600
    while not stop.is_set():
        try:
            seen = loop.run_once()
        except Exception as exc:
            loop.failures += 1
            _log.warning("monitor batch failed (%s); retrying", type(exc).__name__)
            source.retry_own()
            stop.wait(2.0)
            continue
        now = time.monotonic()
        if seen:
            idle_since = now
        elif stop_when_idle is not None and now - idle_since >= stop_when_idle:
            break
        if now >= next_housekeeping:
            next_housekeeping = now + 600
            try:
                source.forget_idle_consumers()
            except Exception as exc:  # housekeeping must never stop a monitor
                _log.warning("could not tidy the consumer group (%s)", type(exc).__name__)
    if monitor.notifications is not None:
        monitor.notifications.drain(10)
        monitor.notifications.stop()
    if guard_sink is not None:
        guard_sink.close()
    typer.echo(f"monitor {name}: {loop.processed} events processed, "
               f"{source.claimed} taken over from other monitors")


def replay_command(
    records: Annotated[Path, typer.Argument(help="A records folder (bookings, payments, "
                                            "access), e.g. from `fairslot records synth`.")],
    labels: Annotated[Path | None, typer.Option(
        help="labels.csv with the truth: report recall per tactic and false alarms.")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the figures (and every alert) as JSON here.")] = None,
    batch: Annotated[int, typer.Option(min=1, max=100_000)] = 2000,
) -> None:
    """Replay records through the scenarios (FAIRSLOT_MONITOR_* thresholds) and report."""
    from fairslot.investigation.evaluate import read_labels
    from fairslot.investigation.records import RecordsError, read_records
    from fairslot.monitoring.replay import Pseudonyms, evaluate, events_from_records, replay
    from fairslot.monitoring.runner import tune_gc

    tune_gc()
    settings = _settings()
    try:
        data = read_records(records, zone=settings.zone)
        truth = read_labels(labels) if labels is not None else None
    except (RecordsError, ValueError) as exc:
        raise CliError(str(exc)) from None
    pseudonyms = Pseudonyms()
    events = events_from_records(data, pseudonyms)
    try:
        result = replay(events, settings, batch=batch)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"{result.events} events in {result.seconds:.1f} s "
               f"({result.events_per_second:,.0f} events/s); {len(result.alerts)} alerts, "
               f"{len(result.decisions)} decisions")
    by_scenario: dict[str, int] = {}
    for alert in result.alerts:
        by_scenario[alert.scenario] = by_scenario.get(alert.scenario, 0) + 1
    for name, count in sorted(by_scenario.items()):
        typer.echo(f"  {name:22} {count}")
    report: dict[str, Any] = {"events": result.events, "seconds": round(result.seconds, 3),
                              "alerts": [a.as_dict() for a in result.alerts]}
    if truth is not None:
        quality = evaluate(result.alerts, truth, events, pseudonyms, settings)
        typer.echo("\ntactic  recall (entities)       rings named  scenarios")
        for t in quality.tactics:
            recall = "n/a (none in records)" if t.recall is None else \
                f"{t.recall:6.1%} ({t.named}/{t.targets})"
            rings = "-" if t.ring_recall is None else f"{t.rings_named}/{t.rings}"
            typer.echo(f"{t.tactic:6}  {recall:22}  {rings:11}  {', '.join(t.scenarios)}")
        typer.echo(f"\nalerts on ring entities {quality.ring_alerts}, on genuine ones "
                   f"{quality.genuine_alerts}, platform-wide {quality.platform_alerts}; "
                   f"{quality.genuine_per_10k:.2f} genuine alerts per 10,000 genuine patients "
                   f"({quality.genuine_patients} patients)")
        report["evaluation"] = quality.as_dict()
    if json_out is not None:
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=1))


def scenarios_command(
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The scenarios this monitor runs, their thresholds and their responses."""
    from fairslot.domain.errors import FairslotError
    from fairslot.monitoring.decisions import responses_from_settings
    from fairslot.monitoring.scenarios import StaticBlacklist, build_scenarios

    settings = _settings()
    try:
        scenarios = build_scenarios(settings, StaticBlacklist())
        responses = responses_from_settings(settings.monitor_responses)
    except (ValueError, FairslotError) as exc:
        raise CliError(str(exc)) from None
    rows = []
    for sc in scenarios:
        thresholds = sc.thresholds()
        for name in sc.scenario_names():
            rows.append({"scenario": name, "tactics": list(sc.tactics), "title": sc.title,
                         "thresholds": thresholds.get(name, thresholds),
                         "responses": [str(r) for r in responses.get(name, [])]})
    text = "\n".join(
        f"{r['scenario']:22} {','.join(r['tactics']):14} "
        f"{'; '.join(map(str, r['responses'])) or '-':28} "
        f"{json.dumps(r['thresholds'], ensure_ascii=False)}" for r in rows)
    _emit(rows, as_json, text)


def _entity(text: str | None) -> Any:
    from fairslot.monitoring.scenarios import Entity

    if text is None:
        return None
    try:
        return Entity.parse(text)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def alerts_command(
    status: Annotated[str, typer.Option(
        help="Comma-separated statuses, or 'all'.")] = "open,acknowledged",
    scenario: Annotated[str | None, typer.Option()] = None,
    entity: Annotated[str | None, typer.Option(help="TYPE:ID, e.g. payer:k3x...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List alerts, latest activity first."""
    from fairslot.monitoring.alerts import STATUSES

    statuses = None if status == "all" else [s.strip() for s in status.split(",")]
    if statuses is not None and not set(statuses) <= set(STATUSES):
        raise CliError(f"unknown status in {status!r}; known: {', '.join(STATUSES)}, all")
    alerts = _store(_settings()).alerts(statuses=statuses, scenario=scenario,
                                        entity=_entity(entity), limit=limit)
    text = "\n".join(
        f"{a.id:6} {a.severity:8} {a.status:14} {a.scenario:20} {a.entity}  "
        f"last {a.last_seen:%Y-%m-%d %H:%M:%S}Z  {a.summary}" for a in alerts) or "no alerts"
    _emit([a.as_dict() for a in alerts], as_json, text)


def show_command(
    alert_id: Annotated[int, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One alert with its evidence, status history and decisions."""
    store = _store(_settings())
    alert = store.alert(alert_id)
    if alert is None:
        raise CliError(f"no alert {alert_id}")
    history = store.history(alert_id)
    decisions = store.decisions(alert_id=alert_id)
    data = {**alert.as_dict(),
            "history": [{"at": h.at.isoformat(timespec="seconds"), "status": h.status,
                         "by": h.actor, "reason": h.reason} for h in history],
            "decisions": [d.as_dict() for d in decisions]}
    lines = [f"alert {alert.id}: {alert.scenario} ({alert.severity}, {alert.status})",
             alert.summary, f"entity {alert.entity}; related "
             f"{', '.join(map(str, alert.related)) or '-'}",
             f"figures {json.dumps(alert.figures, ensure_ascii=False)}",
             f"seen {alert.first_seen:%Y-%m-%d %H:%M:%S}Z to {alert.last_seen:%Y-%m-%d %H:%M:%S}Z",
             "samples:"]
    lines += [f"  {json.dumps(s, ensure_ascii=False)}" for s in alert.samples]
    lines += [f"history: {h.at:%Y-%m-%d %H:%M} {h.status} by {h.actor}: {h.reason or ''}"
              for h in history]
    lines += [f"decision {d.id}: {d.action} {d.entity} until {d.expires_at:%Y-%m-%d %H:%M}Z"
              + (f" (lifted by {d.lifted_by})" if d.lifted_at else "") for d in decisions]
    _emit(data, as_json, "\n".join(lines))


def set_status_command(
    alert_id: Annotated[int, typer.Argument()],
    status: Annotated[str, typer.Argument(
        help="open, acknowledged, resolved or false_positive")],
    by: Annotated[str, typer.Option(help="Who makes the change (kept in the history).")],
    reason: Annotated[str | None, typer.Option(
        help="Why; required for resolved and false_positive.")] = None,
) -> None:
    """Acknowledge, resolve, mark a false positive, or reopen an alert."""
    change = _monitor(_settings()).set_status(alert_id, status, f"cli:{by}", reason)
    alert = change.alert
    quiet = f" (quiet until {alert.quiet_until:%Y-%m-%d %H:%M}Z)" if alert.quiet_until else ""
    typer.echo(f"alert {alert.id} is {alert.status}{quiet}")


def decisions_command(
    active: Annotated[bool, typer.Option(help="Only decisions in force now.")] = True,
    entity: Annotated[str | None, typer.Option(help="TYPE:ID")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List decisions, newest first."""
    now = dt.datetime.now(dt.UTC)
    decisions = _store(_settings()).decisions(active_at=now if active else None,
                                              entity=_entity(entity), limit=limit)
    text = "\n".join(
        f"{d.id:6} {d.action:14} {d.param or '':12} {d.entity!s:40} "
        f"until {d.expires_at:%Y-%m-%d %H:%M}Z by {d.created_by}"
        + (f" LIFTED by {d.lifted_by}" if d.lifted_at else "") for d in decisions) or \
        "no decisions"
    _emit([d.as_dict() for d in decisions], as_json, text)


def decide_command(
    action: Annotated[str, typer.Argument(
        help="raise_level, require_pow, hold_bookings or block")],
    entity: Annotated[str, typer.Argument(help="TYPE:ID, e.g. account:123")],
    lifetime: Annotated[str, typer.Argument(help="30m, 6h, 7d ...")],
    by: Annotated[str, typer.Option(help="Who decides (kept with the decision).")],
    reason: Annotated[str, typer.Option(help="Why.")],
    level: Annotated[str | None, typer.Option(
        help="For raise_level: elevated or under_attack.")] = None,
) -> None:
    """Make a decision by hand."""
    from fairslot.monitoring.decisions import lifetime as parse_lifetime

    decision = _monitor(_settings()).decide(action, _entity(entity), parse_lifetime(lifetime),
                                            f"cli:{by}", reason, level)
    typer.echo(f"decision {decision.id}: {decision.action} {decision.entity} until "
               f"{decision.expires_at:%Y-%m-%d %H:%M}Z")


def lift_command(
    decision_id: Annotated[int, typer.Argument()],
    by: Annotated[str, typer.Option(help="Who lifts it.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Lift a decision before its time."""
    decision = _monitor(_settings()).lift(decision_id, f"cli:{by}", reason)
    typer.echo(f"decision {decision.id} lifted")


def register(app: typer.Typer) -> None:
    """Add the ``monitor`` group to the main app."""
    group = typer.Typer(help="Live monitoring: run monitors, work on alerts and decisions, "
                        "replay records.", no_args_is_help=True)
    group.command("run")(run_command)
    group.command("replay")(replay_command)
    group.command("scenarios")(scenarios_command)
    group.command("alerts")(alerts_command)
    group.command("show")(show_command)
    group.command("status")(set_status_command)
    group.command("decisions")(decisions_command)
    group.command("decide")(decide_command)
    group.command("lift")(lift_command)
    app.add_typer(group, name="monitor")
