"""What fairslot tells an account: draw results, waitlist offers, reminders. Each goes to the
in-app inbox and through the configured notification channels (``services.messaging``), in
the account's language."""

from __future__ import annotations

import datetime as dt

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.identity import mask_name
from fairslot.domain.messages import language_of, render
from fairslot.services import messaging
from fairslot.services.deps import Deps, Units
from fairslot.storage.repositories import Notification
from fairslot.storage.uow import UnitOfWork

__all__ = ["inbox", "notify", "send_reminders", "when"]


def inbox(uow: UnitOfWork, deps: Deps, account: Account) -> list[Notification]:
    return uow.notifications.inbox(account.id or 0)


def when(deps: Deps, at: dt.datetime) -> str:
    """A moment as the hospital's local time, for a message."""
    return f"{at.astimezone(deps.settings.zone):%Y-%m-%d %H:%M}"


def notify(uow: UnitOfWork, deps: Deps, account_id: int, kind: str, *,
           patient_id: int | None = None, **fields: object) -> None:
    """Tell the account about ``kind`` (a kind of ``fairslot.domain.messages``): its inbox
    and each notification channel it has an address for, in its language. ``patient_id``
    fills ``{patient}`` with the patient's masked name."""
    account = uow.accounts.get(account_id)
    if account is None:
        return
    if patient_id is not None:
        patient = uow.patients.get(patient_id)
        fields["patient"] = mask_name(patient.name) if patient is not None else "-"
    now = deps.clock.now()
    message = render(kind, language_of(account.language), **fields)
    uow.notifications.add(account_id, now, kind, message.text[:500])
    for channel in deps.messenger.notify:
        address = _address(account, channel)
        if address is not None:
            messaging.send(uow, deps.messenger, now, channel=channel, address=address,
                           kind=kind, language=account.language, account_id=account_id,
                           **fields)


def _address(account: Account, channel: str) -> str | None:
    """Where ``channel`` reaches the account: its verified phone for texts (and the
    development outbox). WeChat and e-mail need an address the account has bound, which
    accounts cannot do yet, so they are skipped."""
    if channel in ("sms", messaging.OUTBOX):
        return account.phone if account.phone_verified_at is not None else None
    return None


def send_reminders(units: Units, deps: Deps) -> int:
    """A scheduled job: remind of a held booking ``payment_reminder_minutes`` before its
    payment deadline, and of a paid visit ``visit_reminder_hours`` before it starts; each
    once (the reminder is an event on the booking). Bookings of staff accounts (the desk's
    walk-ins) are left to the desk. Returns how many were sent."""
    now = deps.clock.now()
    s = deps.settings
    plan = (("reminder.payment", "payment.reminder", BookingStatus.HELD, "pay_by",
             dt.timedelta(minutes=s.payment_reminder_minutes)),
            ("reminder.visit", "visit.reminder", BookingStatus.PAID, "starts_at",
             dt.timedelta(hours=s.visit_reminder_hours)))
    sent = 0
    for event, kind, status, column, ahead in plan:
        with units() as uow:
            for booking, session in uow.bookings.reminders_due(event, status, column, now,
                                                               now + ahead):
                account = uow.accounts.get(booking.account_id)
                uow.events.append(event, now, account_id=booking.account_id,
                                  patient_id=booking.patient_id, session_id=session.id,
                                  booking_id=booking.id)
                if account is None or account.role is not Role.PATIENT:
                    continue
                notify(uow, deps, booking.account_id, kind, patient_id=booking.patient_id,
                       session=when(deps, session.starts_at), pay_by=when(deps, booking.pay_by))
                sent += 1
            uow.commit()
    return sent
