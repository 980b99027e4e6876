"""var/demo-logins.txt names each login's role and what it is for, and still reads a file
written before it did."""

from __future__ import annotations

import pathlib

import pytest

from fairslot.cli.demo import demo_logins
from fairslot.services.demo import DEMO_USERS


def test_the_logins_file_names_each_logins_role(tmp_path: pathlib.Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    logins = demo_logins()
    assert set(logins) == set(DEMO_USERS)
    lines = (tmp_path / "var" / "demo-logins.txt").read_text().splitlines()
    assert lines[0].startswith("#")
    for line in lines[1:]:
        username, password, role = line.split()[:3]
        assert logins[username] == password and role == DEMO_USERS[username].value + ":"
    assert demo_logins() == logins  # made once


def test_an_older_logins_file_still_reads(tmp_path: pathlib.Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "demo-logins.txt").write_text("demo-patient abc123\n")
    assert demo_logins() == {"demo-patient": "abc123"}
