"""The booking state machine: what each state may become, and when."""

from __future__ import annotations

import datetime as dt

import pytest

from fairslot.domain.booking import (
    ACTIVE_STATUSES,
    SLOT_TAKEN_STATUSES,
    VISIT_STATUSES,
    Booking,
    BookingStatus,
    IllegalTransition,
    PatientImmutable,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
VISIT = T0 + dt.timedelta(days=3)
CUTOFF = dt.timedelta(hours=12)
LATE = dt.timedelta(hours=24)


def held() -> Booking:
    return Booking(session_id=1, slot_id=1, patient_id=7, account_id=3, fee_cents=5000,
                   created_at=T0, pay_by=T0 + dt.timedelta(minutes=15))


def paid() -> Booking:
    booking = held()
    booking.pay(T0 + dt.timedelta(minutes=1), "alipay:someone")
    return booking


def test_the_words_for_sets_of_statuses_nest() -> None:
    assert {BookingStatus.HELD, BookingStatus.PAID} == ACTIVE_STATUSES
    assert ACTIVE_STATUSES < VISIT_STATUSES < SLOT_TAKEN_STATUSES
    assert BookingStatus.NO_SHOW in SLOT_TAKEN_STATUSES - VISIT_STATUSES
    assert not SLOT_TAKEN_STATUSES & {BookingStatus.CANCELLED, BookingStatus.EXPIRED,
                                      BookingStatus.REFUNDED}


def test_a_hold_is_paid_before_its_deadline_and_not_after() -> None:
    on_time = paid()
    assert on_time.status is BookingStatus.PAID and on_time.payer_account == "alipay:someone"
    late = held()
    with pytest.raises(IllegalTransition) as refused:
        late.pay(T0 + dt.timedelta(minutes=16), "alipay:someone")
    assert refused.value.code == "payment_deadline_passed"
    assert late.status is BookingStatus.HELD


def test_a_hold_expires_only_after_its_deadline() -> None:
    booking = held()
    with pytest.raises(IllegalTransition):
        booking.expire(T0 + dt.timedelta(minutes=15))
    booking.expire(T0 + dt.timedelta(minutes=16))
    assert booking.status is BookingStatus.EXPIRED and not booking.active


def test_a_declined_charge_puts_the_booking_back_to_awaiting_payment() -> None:
    booking = paid()
    booking.undo_payment()
    assert booking.status is BookingStatus.HELD and booking.paid_at is None
    assert booking.payer_account is None
    with pytest.raises(IllegalTransition):
        booking.undo_payment()


def test_a_patient_cancels_online_until_the_cut_off_and_late_inside_the_late_window() -> None:
    early = paid()
    early.cancel(VISIT - dt.timedelta(hours=30), VISIT, CUTOFF, late_window=LATE)
    assert early.status is BookingStatus.REFUNDED and not early.late_cancel
    late = paid()
    late.cancel(VISIT - dt.timedelta(hours=14), VISIT, CUTOFF, late_window=LATE)
    assert late.late_cancel  # allowed online, but counted against credit
    too_late = held()
    with pytest.raises(IllegalTransition) as refused:
        too_late.cancel(VISIT - dt.timedelta(hours=11), VISIT, CUTOFF, late_window=LATE)
    assert refused.value.code == "cancel_cutoff_passed" and too_late.active


def test_the_desk_may_cancel_after_the_cut_off_but_not_once_the_session_started() -> None:
    booking = paid()
    booking.cancel(VISIT - dt.timedelta(hours=1), VISIT, CUTOFF, by_staff=True)
    assert booking.status is BookingStatus.REFUNDED and booking.late_cancel
    started = paid()
    with pytest.raises(IllegalTransition):
        started.cancel(VISIT, VISIT, CUTOFF, by_staff=True)


def test_cancel_online_is_offered_only_where_it_can_work() -> None:
    booking = paid()
    assert booking.can_cancel_online(VISIT - dt.timedelta(hours=13), VISIT, CUTOFF)
    assert not booking.can_cancel_online(VISIT - dt.timedelta(hours=11), VISIT, CUTOFF)
    booking.cancel(VISIT - dt.timedelta(hours=20), VISIT, CUTOFF)
    assert not booking.can_cancel_online(VISIT - dt.timedelta(hours=20), VISIT, CUTOFF)


def test_check_in_opens_two_hours_before_and_closes_at_the_end_of_the_session() -> None:
    ends = VISIT + dt.timedelta(hours=4)
    early = paid()
    with pytest.raises(IllegalTransition) as refused:
        early.check_in(VISIT - dt.timedelta(hours=3), VISIT, ends)
    assert refused.value.code == "check_in_not_open"
    over = paid()
    with pytest.raises(IllegalTransition):
        over.check_in(ends + dt.timedelta(minutes=1), VISIT, ends)
    on_time = paid()
    on_time.check_in(VISIT - dt.timedelta(minutes=30), VISIT, ends)
    assert on_time.status is BookingStatus.CHECKED_IN
    with pytest.raises(IllegalTransition):
        held().check_in(VISIT, VISIT, ends)  # unpaid: pay first


def test_a_paid_booking_not_attended_becomes_a_no_show_after_the_grace() -> None:
    ends = VISIT + dt.timedelta(hours=4)
    grace = dt.timedelta(minutes=30)
    booking = paid()
    with pytest.raises(IllegalTransition):
        booking.mark_no_show(ends + dt.timedelta(minutes=10), ends, grace)
    booking.mark_no_show(ends + grace, ends, grace)
    assert booking.status is BookingStatus.NO_SHOW and booking.status in SLOT_TAKEN_STATUSES


def test_a_bookings_patient_never_changes() -> None:
    booking = held()
    with pytest.raises(PatientImmutable):
        booking.patient_id = 8
    booking.patient_id = 7  # the same patient is no change
    assert booking.patient_id == 7


def test_ended_bookings_cannot_be_revived() -> None:
    for end in ("expired", "cancelled"):
        booking = held()
        if end == "expired":
            booking.expire(T0 + dt.timedelta(hours=1))
        else:
            booking.cancel(T0, VISIT, CUTOFF)
        for action in (lambda b: b.pay(T0, "alipay:x"), lambda b: b.cancel(T0, VISIT, CUTOFF),
                       lambda b: b.check_in(VISIT, VISIT, VISIT + dt.timedelta(hours=4))):
            with pytest.raises(IllegalTransition):
                action(booking)
