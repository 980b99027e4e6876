"""The booking request's database cost, and calls to the payment provider made outside the
transaction with nothing lost when they fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.booking import BookingStatus
from fairslot.services import booking, outbox
from fairslot.services.context import RequestContext
from fairslot.services.payments import PaymentFailed, TestPaymentProvider, identify_payer
from fairslot.web.app import create_app
from tests.conftest import World

CTX = RequestContext(ip="203.0.113.60")


class _Meter:
    """Statements executed and connections checked out by the request's threads (the access
    log's writer thread, which batches rows in the background, is not the request's)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[str] = []
        self.checkouts = 0
        self.on = False
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine.pool, "checkout", self._checkout)

    def _mine(self) -> bool:
        return self.on and threading.current_thread().name != "fairslot-access-log"

    def _statement(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if self._mine():
            self.statements.append(statement.split()[0].upper() + " " + statement[:60])

    def _checkout(self, *args: object) -> None:
        if self._mine():
            self.checkouts += 1


@pytest.fixture
def meter(world: World) -> Iterator[_Meter]:
    yield _Meter(world.platform.engine)


def test_a_booking_is_at_most_six_statements_on_one_connection(world: World,
                                                               meter: _Meter) -> None:
    _, (pid,), token = world.patient_account("measured")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    with TestClient(create_app(world.platform)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        screen = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                            headers=headers).json()
        clock.advance(3)
        meter.on = True
        answer = client.post("/api/v1/bookings",
                             json={"session_id": world.session_ids[0], "patient_id": pid},
                             headers={**headers, screen["token_header"]: screen["action_token"]})
        meter.on = False
    assert answer.status_code == 201, answer.text
    work = [s for s in meter.statements if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
    # PostgreSQL: the account, the locked look-up, the quota facts, and the slot, booking
    # and event in one statement; SQLite writes the last three one by one.
    assert len(work) <= (4 if world.platform.dialect == "postgresql" else 6), work
    assert meter.checkouts == 1


def test_a_refund_goes_through_the_provider_and_a_failed_one_is_retried(world: World) -> None:
    platform = world.platform
    provider = platform.payments
    assert isinstance(provider, TestPaymentProvider)
    account, (pid,), _ = world.patient_account("refunded")
    view = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    platform.run(booking.pay, account, view.booking.id or 0, "wechat:wxid_refund", CTX)
    assert len(provider.charges) == 1
    provider.fail_next_refunds = 1
    cancelled = platform.run(booking.cancel, account, view.booking.id or 0, CTX)
    assert cancelled.booking.status is BookingStatus.REFUNDED
    assert provider.refunds == {}  # the provider was down: nothing refunded yet...
    with platform.uow() as uow:
        assert [i.kind for i in uow.outbox.pending()] == [outbox.REFUND]
    assert platform.run_job(outbox.run_due) == 0  # ...and not retried before its time
    clock = platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(60)
    assert platform.run_job(outbox.run_due) == 1
    assert len(provider.refunds) == 1
    with platform.uow() as uow:
        assert uow.outbox.pending() == []


def test_a_declined_charge_leaves_the_booking_awaiting_payment(world: World) -> None:
    platform = world.platform
    provider = platform.payments
    assert isinstance(provider, TestPaymentProvider)
    account, (pid,), _ = world.patient_account("declined")
    view = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    provider.fail_next_charges = 1
    with pytest.raises(PaymentFailed):
        platform.run(booking.pay, account, view.booking.id or 0, "card:6222020000001111", CTX)
    again = platform.run(booking.get_booking, account, view.booking.id or 0)
    assert again.booking.status is BookingStatus.HELD and again.booking.paid_at is None
    paid = platform.run(booking.pay, account, view.booking.id or 0, "card:6222020000001111",
                        CTX)
    assert paid.booking.status is BookingStatus.PAID and len(provider.charges) == 1


def test_a_charge_left_pending_by_a_crash_is_completed_by_the_scheduler(world: World) -> None:
    platform = world.platform
    provider = platform.payments
    assert isinstance(provider, TestPaymentProvider)
    account, (pid,), _ = world.patient_account("crashed")
    view = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    # The process dies right after the payment's transaction commits: the charge was never
    # attempted (simulated by recording the payment without running its outbox item).
    with platform.uow() as uow:
        held = uow.bookings.get_for_update(view.booking.id or 0)
        assert held is not None
        payer = identify_payer(platform.payments, "alipay:crash@x.cn")
        booking._record_payment(uow, platform.deps, held, payer, account, CTX)
        uow.commit()
    assert provider.charges == {}
    assert platform.run_job(outbox.run_due) == 1
    assert len(provider.charges) == 1
    with platform.uow() as uow:
        payment = uow.bookings.payment_of(view.booking.id or 0)
        assert payment is not None and payment.provider_ref is not None
