"""Maps the plain domain classes onto the tables (SQLAlchemy's imperative mapping), so the
domain stays free of the database while repositories load and save its objects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import registry

from fairslot.domain.accounts import Account, Patient
from fairslot.domain.booking import Booking
from fairslot.domain.schedule import Department, Doctor, Hospital, Session, Slot
from fairslot.storage import tables
from fairslot.storage.keys import keyring_of

__all__ = ["map_domain"]

_registry = registry(metadata=tables.metadata)
_mapped = False


def _index_patient(mapper: Any, connection: Any, target: Patient) -> None:
    keys = keyring_of(connection.dialect)
    target._id_number_index = keys.blind_index("id_number", target.id_number)  # type: ignore[attr-defined]
    target._phone_index = (  # type: ignore[attr-defined]
        keys.blind_index("phone", target.phone) if target.phone else None
    )


def _index_account(mapper: Any, connection: Any, target: Account) -> None:
    target._phone_index = (  # type: ignore[attr-defined]
        keyring_of(connection.dialect).blind_index("phone", target.phone) if target.phone
        else None
    )


def map_domain() -> None:
    """Idempotent: map every domain class once per process."""
    global _mapped
    if _mapped:
        return
    _registry.map_imperatively(Hospital, tables.hospitals)
    _registry.map_imperatively(Department, tables.departments)
    _registry.map_imperatively(Doctor, tables.doctors)
    _registry.map_imperatively(Session, tables.sessions)
    _registry.map_imperatively(
        Slot, tables.slots,
        properties={"_taken": tables.slots.c.taken, "_open_from": tables.slots.c.open_from},
    )
    _registry.map_imperatively(
        Account, tables.accounts, properties={"_phone_index": tables.accounts.c.phone_index}
    )
    _registry.map_imperatively(
        Patient, tables.patients,
        properties={
            "_id_number_index": tables.patients.c.id_number_index,
            "_phone_index": tables.patients.c.phone_index,
        },
    )
    _registry.map_imperatively(Booking, tables.bookings)
    for hook in ("before_insert", "before_update"):
        event.listen(Patient, hook, _index_patient)
        event.listen(Account, hook, _index_account)
    _mapped = True
