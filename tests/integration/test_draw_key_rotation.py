"""A round names the draw key that signed it, even after the hospital rotates its key.

Before: the round document's ``hospital_key`` was whatever key the server held when the
document was exported, so after a rotation every earlier round's document named the new key
and failed to verify; and a round open across the rotation was frozen and drawn under the
new key, its statements under two keys that no document could name."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.draw.signing import verify_signed
from fairslot.domain.draw.verify import verify_document
from fairslot.domain.errors import Conflict
from fairslot.services import release
from fairslot.storage import tables as t
from tests.conftest import make_settings
from tests.integration.test_release import (
    CTX,
    DrawWorld,
    _close_and_draw,
    _draw_world,
    _enter_all,
    trust,
)

OLD, NEW = "1d" * 32, "3f" * 32  # the tests' usual key, and the one rotated to


def _rotated(platform: Platform, clock: FixedClock, *, keep_old: bool) -> Platform:
    """The same hospital after a key rotation: a new draw key, the old one kept or not."""
    settings = make_settings(
        database_url=platform.settings.database_url,
        draw_signing_key=SecretStr(NEW),
        draw_previous_signing_keys=[SecretStr(OLD)] if keep_old else [])
    return bootstrap(settings, clock=clock, engine=platform.engine)


def test_a_round_opened_before_a_rotation_is_drawn_and_documented_under_its_own_key(
        platform: Platform, clock: FixedClock) -> None:
    dw: DrawWorld = _draw_world(platform, clock, people=4)
    old_key = platform.deps.draw_key.public_hex
    _enter_all(dw)
    after = _rotated(platform, clock, keep_old=True)
    assert after.deps.draw_key.public_hex != old_key
    # An entry written after the rotation is receipted under the round's key.
    account, patient_id = dw.patients[0]
    changed = after.run(release.enter, account, dw.round_id, patient_id,
                        list(reversed(dw.sessions)), CTX)
    assert changed.receipt is not None and changed.receipt["hospital_key"] == old_key
    assert verify_signed(changed.receipt, old_key)
    _close_and_draw(dataclasses.replace(dw, world=dataclasses.replace(dw.world,
                                                                      platform=after)))
    document = after.run(release.export_round_document, dw.round_id)
    assert document["hospital_key"] == old_key
    report = verify_document(document, trust=trust(after))
    assert report.ok, report.reasons
    with after.uow() as uow:
        stored = uow.db.execute(sa.select(t.draw_statements.c.kind,
                                          t.draw_statements.c.signing_key).where(
            t.draw_statements.c.round_id == dw.round_id)).all()
    assert {kind: key for kind, key in stored} == {
        "opening": old_key, "freeze": old_key, "result": old_key, "results": old_key}


def test_without_the_old_key_the_round_waits_and_its_document_still_names_it(
        platform: Platform, clock: FixedClock) -> None:
    dw: DrawWorld = _draw_world(platform, clock, people=2)
    old_key = platform.deps.draw_key.public_hex
    _enter_all(dw)
    after = _rotated(platform, clock, keep_old=False)
    document = after.run(release.export_round_document, dw.round_id)
    assert document["hospital_key"] == old_key
    assert verify_document(document, trust=trust(after)).status == "pending"
    clock.set(after.run(release.round_view, dw.round_id).round.closes_at)
    with pytest.raises(Conflict) as refused:
        after.run(release.freeze_round, dw.round_id)
    assert refused.value.code == "draw_key_missing"
    # The scheduler's job leaves it waiting (and goes on with other rounds) ...
    assert after.run_job(release.draw_due_rounds) == 0
    assert after.run(release.round_view, dw.round_id).stage.stage == "closed"  # not frozen
    # ... until the old key is configured again.
    again = _rotated(platform, clock, keep_old=True)
    assert again.run(release.freeze_round, dw.round_id)
