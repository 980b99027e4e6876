"""Findings of the red team of 2026-11-28 (a live server on SQLite, and three workers on
PostgreSQL with Redis), each reproduced here on both backends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from fairslot.domain.booking import BookingStatus
from fairslot.services import booking
from fairslot.services.context import RequestContext
from fairslot.storage.uow import UnitOfWork
from tests.conftest import World


def _ctx() -> RequestContext:
    return RequestContext(ip="203.0.113.7")


def test_a_payment_racing_a_cancel_is_refunded_not_lost(world: World,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found live: the patient pays and cancels the same held booking at once (two tabs, or
    the app retrying). Both answered 200, and the booking ended ``cancelled``: the payment
    was captured and never refunded. The cancel had read the booking (still held) before it
    took its locks, and the row it then locked was the stale one it already held in memory,
    so it cancelled a paid booking as a held one. Here the cancel is paused after its first
    read while the payment commits, the interleaving the live run hit."""
    platform = world.platform
    account, (patient,), _ = world.patient_account("racer")
    held = platform.run(booking.book, account, patient, world.session_ids[0], _ctx())
    booking_id = held.booking.id or 0

    cancel_read = threading.Event()
    paid = threading.Event()
    real_lock = UnitOfWork.lock

    def lock_after_payment(self: UnitOfWork, *names: Any) -> None:
        if threading.current_thread().name == "cancel" and names[:1] \
                and names[0][0] == "patient":
            cancel_read.set()
            assert paid.wait(10)
        real_lock(self, *names)

    monkeypatch.setattr(UnitOfWork, "lock", lock_after_payment)
    outcome: dict[str, Any] = {}

    def cancel() -> None:
        try:
            outcome["cancel"] = platform.run(booking.cancel, account, booking_id, _ctx())
        except Exception as exc:
            outcome["cancel"] = exc

    worker = threading.Thread(target=cancel, name="cancel")
    worker.start()
    assert cancel_read.wait(10)
    platform.run(booking.pay, account, booking_id, "alipay:racer-payer", _ctx())
    paid.set()
    worker.join(30)
    assert not worker.is_alive()

    final = platform.run(booking.get_booking, account, booking_id).booking
    # Either the cancel saw the payment and refunded it, or it was refused: never a paid
    # booking turned into an unrefunded ``cancelled`` one.
    assert final.status in (BookingStatus.REFUNDED, BookingStatus.PAID), (final.status,
                                                                          outcome)
    if final.status is BookingStatus.REFUNDED:
        with platform.uow() as uow:
            payments = uow.db.execute(
                sa.text("select refunded_at from payments where booking_id = :b"),
                {"b": booking_id}).all()
        assert payments and all(row[0] is not None for row in payments)
