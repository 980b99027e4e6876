"""Repositories: the queries the services need, each in the hospital's words, one module
per part of the hospital (schedule, accounts and patients, bookings, rounds, events)."""

from fairslot.storage.repositories.accounts import AccountRepository, PatientRepository
from fairslot.storage.repositories.bookings import BookingRepository, BookingTarget, Payment
from fairslot.storage.repositories.draw import DrawRepository, StoredBeacon, StoredFrozenList
from fairslot.storage.repositories.events import (
    EventLogWriter,
    EventRepository,
    Notification,
    NotificationRepository,
    OutboxItem,
    OutboxRepository,
    RecordedEvent,
)
from fairslot.storage.repositories.messages import (
    CodeRepository,
    MessageRepository,
    SentMessage,
    VerificationCode,
)
from fairslot.storage.repositories.quotas import QuotaFacts, QuotaRepository
from fairslot.storage.repositories.rounds import RoundRepository
from fairslot.storage.repositories.schedule import ClaimedSlot, ScheduleRepository, SessionCounts

__all__ = [
    "AccountRepository",
    "BookingRepository",
    "BookingTarget",
    "ClaimedSlot",
    "CodeRepository",
    "DrawRepository",
    "EventLogWriter",
    "EventRepository",
    "MessageRepository",
    "Notification",
    "NotificationRepository",
    "OutboxItem",
    "OutboxRepository",
    "PatientRepository",
    "Payment",
    "QuotaFacts",
    "QuotaRepository",
    "RecordedEvent",
    "RoundRepository",
    "ScheduleRepository",
    "SentMessage",
    "SessionCounts",
    "StoredBeacon",
    "StoredFrozenList",
    "VerificationCode",
]
