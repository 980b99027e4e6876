"""``fairslot consortium`` as an operator meets it: every mistake is one line on stderr and
exit status 2, and nothing is changed."""

from __future__ import annotations

import pathlib

import pytest
import sqlalchemy as sa

from fairslot.storage.database import make_engine
from fairslot.storage.migrate import upgrade
from tests.cli.test_cli import fairslot
from tests.conftest import TEST_SECRET


@pytest.fixture
def env(tmp_path: pathlib.Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return {"FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": TEST_SECRET}


def consortium(tmp_path: pathlib.Path, env: dict[str, str], *args: str,
               stdin: str | None = None) -> tuple[int, str, str]:
    r = fairslot("consortium", *args, cwd=tmp_path, env=env, input=stdin)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.slow
def test_every_mistake_is_one_line_and_a_non_zero_exit(tmp_path: pathlib.Path,
                                                        env: dict[str, str]) -> None:
    mistakes = [
        ("publish", "entry", "--kind", "ring_member", "--identity", "1101", "--days", "3",
         "--source", "x"),  # no key yet
        ("keys", "--member", "Bad Code"),
        ("members", "add", "hosp-b", "--url", "ftp://x", "--key", "ed25519:abc"),
        ("policy", "set", "ring_member", "ban"),
        ("withdraw", "4", "--reason", "x"),
        ("appeal", "send", "hosp-b-12", "--message", "x", "--identity", "1"),
        ("epoch", "add", "1"),  # empty standard input: not a key
        ("publish", "ring", str(tmp_path / "nowhere"), "--ring", "R1"),
        ("review", "decide", "hosp-z/1", "--clear", "--note", "seen"),  # no such entry
        ("review", "decide", "hosp-z", "--clear", "--note", "seen"),
    ]
    for args in mistakes:
        code, out, err = consortium(tmp_path, env, *args, stdin="")
        assert code == 2, (args, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert "Traceback" not in err
    engine = make_engine(env["FAIRSLOT_DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM consortium_audit")).scalar() == 0
    engine.dispose()


@pytest.mark.slow
def test_an_unmigrated_database_is_named_as_the_problem(tmp_path: pathlib.Path) -> None:
    env = {"FAIRSLOT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
           "FAIRSLOT_SECRET_KEY": TEST_SECRET}
    code, _, err = consortium(tmp_path, env, "inspect")
    assert code == 2 and "fairslot db upgrade" in err and err.count("\n") == 1
