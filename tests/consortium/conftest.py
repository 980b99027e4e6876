"""Two hospitals in one process: B is the test's platform (SQLite and PostgreSQL), A is a
second database on SQLite served by the consortium's own routes through a test client."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.consortium import Action, Consortium
from fairslot.consortium.hub import create_hub_app
from fairslot.consortium.pseudonyms import EpochKey
from fairslot.consortium.signing import MemberKey
from fairslot.crypto import Keyring
from fairslot.storage.database import make_engine
from fairslot.storage.keys import bind_keyring
from fairslot.storage.migrate import upgrade

A_URL = "http://hosp-a.test"


@dataclasses.dataclass
class Pair:
    a: Consortium
    b: Consortium
    a_key: MemberKey
    b_key: MemberKey
    epoch: EpochKey
    client: TestClient
    clock: FixedClock


def sqlite_engine(path: pathlib.Path) -> sa.Engine:
    """Another hospital's database, encrypted under a master secret of its own."""
    engine = make_engine(f"sqlite:///{path}")
    bind_keyring(engine, Keyring(("other-hospital-" + path.stem).encode() * 3))
    upgrade(engine)
    return engine


@pytest.fixture
def pair(platform: Platform, clock: FixedClock, tmp_path: pathlib.Path) -> Iterator[Pair]:
    engine_a = sqlite_engine(tmp_path / "a.db")
    app = create_hub_app(engine_a, clock)
    a: Consortium = app.state.consortium
    client = TestClient(app, base_url=A_URL)
    b = Consortium(platform.engine, clock, http=client)
    a_key = a.create_key("hosp-a", "Hospital A", actor="test")
    b_key = b.create_key("hosp-b", "Hospital B", actor="test")
    epoch = EpochKey.new(1)
    for c in (a, b):
        c.store.add_epoch(epoch, clock.now(), "test")
        c.refresh()
    a.add_member("hosp-b", "http://hosp-b.test", b_key.public_text, actor="test")
    b.add_member("hosp-a", A_URL, a_key.public_text, actor="test")
    b.set_policy("ring_member", Action.REFUSE, actor="test")
    yield Pair(a, b, a_key, b_key, epoch, client, clock)
    client.close()
    engine_a.dispose()
