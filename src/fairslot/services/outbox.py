"""Calls to the outside world, made after the transaction that decided them has committed:
a payment's charge, a refund, a message
to a person (SMS, WeChat, e-mail). Each is an outbox item written in that transaction; the
request that made it tries it at once, and the scheduler retries whatever is still pending
(a provider down, a process killed in between) with growing pauses, so nothing is lost.
Every call is idempotent at the provider (its reference is the item's), so a retry after an
unknown outcome never charges or refunds twice."""

from __future__ import annotations

import datetime as dt
import logging

from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import FairslotError
from fairslot.services import messaging
from fairslot.services.deps import Deps, Units
from fairslot.services.payments import PaymentFailed
from fairslot.storage.repositories import Payment
from fairslot.storage.uow import UnitOfWork

__all__ = ["CHARGE", "REFUND", "run_due", "run_item"]

log = logging.getLogger("fairslot.outbox")

CHARGE = "payment.charge"
REFUND = "payment.refund"
_MAX_PAUSE = dt.timedelta(hours=1)


def _pause(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(seconds=30 * 2 ** attempts), _MAX_PAUSE)


def run_item(uow: UnitOfWork, deps: Deps, item_id: int) -> bool:
    """Try one item now, in a transaction of its own on ``uow`` (whose previous transaction
    has committed). True when done; a failure is recorded for a later retry, except a
    declined charge, which is final (the booking goes back to awaiting payment) and raises
    ``PaymentFailed`` to the caller."""
    now = deps.clock.now()
    item = uow.outbox.claim(item_id)
    if item is None:
        uow.commit()
        return True  # done meanwhile, or another worker is on it
    if item.kind == messaging.SEND:
        return _send_message(uow, deps, item.id, int(item.payload["message"]), item.attempts)
    payment = uow.bookings.payment(int(item.payload["payment"]))
    if payment is None:
        uow.outbox.done(item.id, now)
        uow.commit()
        return True
    reference = f"fairslot-{item.id}"
    # The provider is called with the item's row locked but no other work pending: if the
    # call hangs, only this item waits.
    try:
        if item.kind == CHARGE:
            ref = deps.payments.charge(payment.payer_account, payment.amount_cents, reference)
            uow.bookings.set_payment_ref(payment.id, ref)
        elif item.kind == REFUND:
            if payment.provider_ref is None:
                raise PaymentFailed("the charge has not gone through yet")
            deps.payments.refund(payment.provider_ref, payment.amount_cents, reference)
        else:
            raise ValueError(f"unknown outbox item kind {item.kind!r}")
    except PaymentFailed as exc:
        if item.kind == CHARGE and item.attempts == 0 and _decline(uow, payment, now):
            uow.outbox.done(item.id, now)
            uow.commit()
            raise
        uow.outbox.failed(item.id, exc.detail, now + _pause(item.attempts))
        uow.commit()
        log.warning("outbox item %s (%s) failed, retry later: %s", item.id, item.kind,
                    exc.detail)
        return False
    uow.outbox.done(item.id, now)
    uow.events.append("payment." + ("captured" if item.kind == CHARGE else "refunded"), now,
                      booking_id=payment.booking_id, detail={"payment": payment.id})
    uow.commit()
    return True


def _send_message(uow: UnitOfWork, deps: Deps, item_id: int, message_id: int,
                  attempts: int) -> bool:
    now = deps.clock.now()
    try:
        messaging.deliver(uow, deps.messenger, message_id, now)
    except messaging.DeliveryFailed as exc:
        uow.outbox.failed(item_id, exc.detail, now + _pause(attempts))
        uow.commit()
        log.warning("outbox item %s (message) failed, retry later: %s", item_id, exc.detail)
        return False
    uow.outbox.done(item_id, now)
    uow.commit()
    return True


def _decline(uow: UnitOfWork, payment: Payment, now: dt.datetime) -> bool:
    """A first charge the provider refused: the booking returns to awaiting payment (its
    deadline unchanged) and the payment row is closed at once (nothing was taken). False
    when the booking moved on meanwhile (then the charge is retried instead)."""
    booking = uow.bookings.get_for_update(payment.booking_id)
    if booking is None or booking.status is not BookingStatus.PAID:
        return False
    booking.undo_payment()
    uow.bookings.refund_payment(payment.booking_id, now)
    uow.events.append("payment.declined", now, booking_id=payment.booking_id,
                      patient_id=booking.patient_id, session_id=booking.session_id)
    return True


def run_due(units: Units, deps: Deps) -> int:
    """Retry every item whose time has come; returns how many are done."""
    with units() as uow:
        due = uow.outbox.due(deps.clock.now())
    done = 0
    for item_id in due:
        with units() as uow:
            try:
                done += run_item(uow, deps, item_id)
            except FairslotError:
                done += 1  # a declined charge is settled: the booking waits for payment
    return done
