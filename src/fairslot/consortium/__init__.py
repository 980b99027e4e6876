"""The consortium: penalties and confirmed ring members shared between hospitals under
keyed pseudonyms, in signed, versioned feeds (docs/consortium.md).

``Consortium.check(identity=..., phone=..., payer=..., device=...)`` is what services call;
the rest publishes, withdraws, syncs and carries appeals."""

from fairslot.consortium.model import Action, Entry, EntryKind, Match, RingRole, SubjectType
from fairslot.consortium.service import Consortium, MemberStatus, SyncResult
from fairslot.consortium.store import NewEntry

__all__ = ["Action", "Consortium", "Entry", "EntryKind", "Match", "MemberStatus", "NewEntry",
           "RingRole", "SubjectType", "SyncResult"]
