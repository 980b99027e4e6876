"""``fairslot monitor`` as an operator meets it: real processes, one-line errors, alerts
worked on and decisions made and lifted from the command line, a replay with its report."""

from __future__ import annotations

import json
import pathlib
import shutil
import zoneinfo

import pytest

from fairslot.clock import FixedClock
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import MemoryDecisionBook
from fairslot.monitoring.sql_store import SqlMonitorStore
from fairslot.storage.database import make_engine
from tests.cli.test_cli import fairslot
from tests.conftest import TEST_SECRET
from tests.monitoring.conftest import T0, ev, settings


@pytest.fixture
def database(tmp_path: pathlib.Path, sqlite_template: pathlib.Path) -> str:
    path = tmp_path / "fairslot.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def env(database: str, **extra: str) -> dict[str, str]:
    return {"FAIRSLOT_SECRET_KEY": TEST_SECRET, "FAIRSLOT_DATABASE_URL": database, **extra}


def seed_alert(database: str) -> int:
    engine = make_engine(database)
    store = SqlMonitorStore(engine)
    import datetime as dt

    monitor = make_monitor(settings(), clock=FixedClock(dt.datetime.fromtimestamp(T0, dt.UTC)),
                           sink=MemoryDecisionBook(), store=store, notify=False)
    monitor.process([ev("booking.paid", n, payer="hub", patient=f"p{n}") for n in range(10)])
    (alert,) = store.alerts()
    engine.dispose()
    return alert.id


def test_run_without_redis_says_where_the_monitor_runs_instead(tmp_path: pathlib.Path,
                                                               database: str) -> None:
    r = fairslot("monitor", "run", cwd=tmp_path, env=env(database))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "FAIRSLOT_REDIS_URL is not set" in r.stderr and "Traceback" not in r.stderr


def test_an_unknown_scenario_in_settings_is_one_line(tmp_path: pathlib.Path,
                                                     database: str) -> None:
    r = fairslot("monitor", "scenarios", cwd=tmp_path,
                 env=env(database, FAIRSLOT_MONITOR_RESPONSES='{"lauder": []}'))
    assert r.returncode == 2 and "lauder" in r.stderr and "Traceback" not in r.stderr


def test_an_alert_is_acknowledged_resolved_and_shown_with_its_history(
        tmp_path: pathlib.Path, database: str) -> None:
    alert_id = seed_alert(database)
    listed = fairslot("monitor", "alerts", "--json", cwd=tmp_path, env=env(database))
    assert listed.returncode == 0, listed.stderr
    assert [a["entity"] for a in json.loads(listed.stdout)] == ["payer:hub"]
    ack = fairslot("monitor", "status", str(alert_id), "acknowledged", "--by", "li",
                   cwd=tmp_path, env=env(database))
    assert ack.returncode == 0 and "acknowledged" in ack.stdout
    refused = fairslot("monitor", "status", str(alert_id), "resolved", "--by", "li",
                       cwd=tmp_path, env=env(database))
    assert refused.returncode == 2 and "needs a reason" in refused.stderr
    done = fairslot("monitor", "status", str(alert_id), "resolved", "--by", "li",
                    "--reason", "bank froze the account", cwd=tmp_path, env=env(database))
    assert done.returncode == 0, done.stderr
    shown = json.loads(fairslot("monitor", "show", str(alert_id), "--json", cwd=tmp_path,
                                env=env(database)).stdout)
    assert shown["status"] == "resolved"
    assert [(h["status"], h["by"]) for h in shown["history"]] == [
        ("acknowledged", "cli:li"), ("resolved", "cli:li")]
    assert fairslot("monitor", "alerts", cwd=tmp_path, env=env(database)).stdout.strip() == \
        "no alerts"


def test_a_decision_is_made_and_lifted_by_hand(tmp_path: pathlib.Path, database: str) -> None:
    made = fairslot("monitor", "decide", "raise_level", "ip_prefix:203.0.113.0/24", "30m",
                    "--level", "under_attack", "--by", "wang", "--reason", "scraping",
                    cwd=tmp_path, env=env(database))
    assert made.returncode == 0, made.stderr
    decision_id = made.stdout.split(":")[0].split()[-1]
    active = json.loads(fairslot("monitor", "decisions", "--json", cwd=tmp_path,
                                 env=env(database)).stdout)
    assert [(d["action"], d["param"], d["created_by"]) for d in active] == [
        ("raise_level", "under_attack", "cli:wang")]
    lifted = fairslot("monitor", "lift", decision_id, "--by", "wang", "--reason", "over",
                      cwd=tmp_path, env=env(database))
    assert lifted.returncode == 0, lifted.stderr
    assert json.loads(fairslot("monitor", "decisions", "--json", cwd=tmp_path,
                               env=env(database)).stdout) == []
    bad = fairslot("monitor", "decide", "block", "planet:mars", "1h", "--by", "wang",
                   "--reason", "x", cwd=tmp_path, env=env(database))
    assert bad.returncode == 2 and "not an entity" in bad.stderr


@pytest.mark.slow
def test_a_replay_reports_recall_per_tactic(tmp_path: pathlib.Path, database: str) -> None:
    from fairslot.investigation.synth import write_synthetic

    records = tmp_path / "records"
    # The command's report, not the detectors' quality, is under test: a small year has
    # every tactic T1-T9 in it (checked at seed 3, scale 0.1).
    write_synthetic(records, seed=3, scale=0.1, zone=zoneinfo.ZoneInfo("Asia/Shanghai"))
    out = tmp_path / "replay.json"
    r = fairslot("monitor", "replay", str(records), "--labels", str(records / "labels.csv"),
                 "--json", str(out), cwd=tmp_path, env=env(database))
    assert r.returncode == 0, r.stderr
    assert "tactic  recall" in r.stdout and "T4" in r.stdout
    assert "genuine alerts per 10,000 genuine patients" in r.stdout
    report = json.loads(out.read_text())
    assert report["evaluation"]["genuine_patients"] > 0
    assert {t["tactic"] for t in report["evaluation"]["tactics"]} >= {"T1", "T8"}
