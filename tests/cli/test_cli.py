"""The command line as a user meets it: a real process, one-line errors, non-zero exits."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import TEST_SECRET


def fairslot(*args: str, cwd: pathlib.Path, env: dict[str, str] | None = None,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSLOT_")}
    return subprocess.run([sys.executable, "-m", "fairslot.cli", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=300, input=input, check=False)


def test_help_lists_every_command_group(tmp_path: pathlib.Path) -> None:
    r = fairslot("--help", cwd=tmp_path)
    assert r.returncode == 0
    for group in ("serve", "db", "demo", "user", "records", "draw", "guard", "investigate",
                  "simulate"):
        assert group in r.stdout


def test_every_command_answers_its_own_help() -> None:
    # A module that registers a single command (simulate) as well as one with a group.
    from typer.testing import CliRunner

    from fairslot.cli.main import COMMANDS, app

    for name in COMMANDS:
        r = CliRunner().invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert "Usage:" in r.output


@pytest.mark.slow
def test_demo_seed_is_idempotent_and_exports_real_records(tmp_path: pathlib.Path) -> None:
    first = fairslot("demo", "seed", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "seeded the demo hospital" in first.stdout
    for username in ("demo-patient", "demo-desk", "demo-operator", "demo-investigator",
                     "demo-admin"):
        assert username in first.stdout
    db = tmp_path / "var" / "fairslot.db"
    before = db.read_bytes()
    second = fairslot("demo", "seed", cwd=tmp_path)
    assert second.returncode == 0 and "nothing changed" in second.stdout
    import sqlite3

    with sqlite3.connect(db) as conn:
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("departments", "doctors", "sessions", "bookings", "payments")}
    assert counts["departments"] == 8 and counts["doctors"] == 30
    assert counts["bookings"] > 100 and counts["payments"] > 50
    assert len(before) <= len(db.read_bytes())
    secret = (tmp_path / "var" / "demo-secret.key").read_text().strip()
    out = tmp_path / "export"
    r = fairslot("records", "export", str(out), cwd=tmp_path,
                 env={"FAIRSLOT_SECRET_KEY": secret})
    assert r.returncode == 0, r.stderr
    assert "pseudonymised PII" in r.stdout
    assert (out / "bookings.csv").read_text().count("\n") > 100


def test_errors_are_one_line_and_a_non_zero_exit(tmp_path: pathlib.Path) -> None:
    cases = [
        (("records", "export", str(tmp_path / "x")), {}, "FAIRSLOT_SECRET_KEY"),
        (("records", "export", str(tmp_path / "x"), "--since", "yesterday"),
         {"FAIRSLOT_SECRET_KEY": TEST_SECRET, "FAIRSLOT_DATABASE_URL": "sqlite:///db.sqlite"},
         "--since"),
        (("records", "export", str(tmp_path / "x"), "--format", "xml"),
         {"FAIRSLOT_SECRET_KEY": TEST_SECRET}, "--format"),
        (("db", "upgrade"), {"FAIRSLOT_TIMEZONE": "Mars/Olympus"}, "time zone"),
        (("db", "upgrade"), {"FAIRSLOT_DATABASE_URL":
                             "postgresql://nobody@127.0.0.1:1/none"}, "cannot reach"),
        (("user", "create", "Bad Name!", "--role", "operator"),
         {"FAIRSLOT_SECRET_KEY": TEST_SECRET, "FAIRSLOT_NEW_PASSWORD": "long enough pw",
          "FAIRSLOT_DATABASE_URL": "sqlite:///db.sqlite"}, "username"),
        (("serve",), {}, "FAIRSLOT_SECRET_KEY"),
    ]
    for args, env, needle in cases:
        r = fairslot(*args, cwd=tmp_path, env=env)
        assert r.returncode != 0, (args, r.stdout)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (args, r.stderr)
        assert needle in lines[0], (args, lines[0])
        assert "Traceback" not in r.stderr


def test_user_create_then_the_same_name_again_is_refused(tmp_path: pathlib.Path) -> None:
    env = {"FAIRSLOT_SECRET_KEY": TEST_SECRET, "FAIRSLOT_DATABASE_URL": "sqlite:///db.sqlite",
           "FAIRSLOT_NEW_PASSWORD": "long enough pw"}
    assert fairslot("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    r = fairslot("user", "create", "ops1", "--role", "operator", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "created operator account ops1" in r.stdout
    r = fairslot("user", "create", "ops1", "--role", "operator", cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.strip() == "error: that username is taken"


def test_the_top_level_help_lists_every_command_without_importing_the_heavy_layers() -> None:
    # `fairslot --help` answers at once: no database layer, no dataframes, no web framework.
    code = ("import sys\nfrom typer.testing import CliRunner\n"
            "from fairslot.cli.main import COMMANDS, app\n"
            "out = CliRunner().invoke(app, ['--help']).output\n"
            "assert all(name in out for name in COMMANDS), out\n"
            "heavy = {'sqlalchemy', 'polars', 'fastapi', 'sklearn', 'redis'} & set(sys.modules)\n"
            "print(sorted(heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_command_registered_alone_runs_and_has_help(tmp_path: pathlib.Path) -> None:
    """`investigate` is the only command of its module: the lazy table must still find it
    (it once crashed with a traceback on any use)."""
    helped = fairslot("investigate", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--min-score" in helped.stdout and "completion" not in helped.stdout
    missing = fairslot("investigate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                       cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: records folder not found: {tmp_path / 'nowhere'}"
