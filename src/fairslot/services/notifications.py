"""What fairslot tells an account: draw results, waitlist offers (the in-app inbox)."""

from __future__ import annotations

from fairslot.domain.accounts import Account
from fairslot.services.deps import Deps
from fairslot.storage.repositories import Notification
from fairslot.storage.uow import UnitOfWork

__all__ = ["inbox"]


def inbox(uow: UnitOfWork, deps: Deps, account: Account) -> list[Notification]:
    return uow.notifications.inbox(account.id or 0)
