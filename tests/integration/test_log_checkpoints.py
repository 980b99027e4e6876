"""Each record appended to the log of rounds is followed by a signed checkpoint whose root
is the root of the whole log; the frontier kept with it lets the next append skip reading
the log, and a checkpoint kept without one (made before frontiers existed) still works."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.domain.draw import log as roundlog
from fairslot.domain.rounds import RoundKind
from fairslot.services import round_opening
from fairslot.storage import tables as t
from tests.conftest import World


def _append(world: World, n: int) -> None:
    """Open ``n`` rounds: each appends its "opened" record to the log."""
    deps = world.platform.deps
    now = deps.clock.now()
    for i in range(n):
        with world.platform.units() as uow:
            round_id = round_opening.create_round(
                uow, deps, department_id=world.department_id, kind=RoundKind.RELEASE,
                opens=now, closes=now + dt.timedelta(hours=1), now=now)
            round_opening.append_log(uow, deps, round_id, roundlog.opened_record(
                str(round_id), f"{i:064x}"), now)
            uow.commit()


def _latest(platform: Platform) -> tuple[int, str, list[bytes]]:
    with platform.units() as uow:
        checkpoint = uow.draw.checkpoint()
        assert checkpoint is not None
        return checkpoint["size"], checkpoint["root"], uow.draw.log_leaves()


def test_every_checkpoint_signs_the_root_of_the_whole_log(world: World) -> None:
    platform = world.platform
    for appended in (1, 2, 5):
        _append(world, appended)
        size, root, leaves = _latest(platform)
        assert size == len(leaves)
        assert root == roundlog.log_root(leaves).hex()
    # A checkpoint from before frontiers were kept: the next append reads the log once.
    with platform.engine.begin() as conn:
        conn.execute(sa.delete(t.draw_log_frontiers))
    _append(world, 3)
    size, root, leaves = _latest(platform)
    assert size == len(leaves) == 11
    assert root == roundlog.log_root(leaves).hex()
