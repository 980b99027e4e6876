"""The event log as staff read and write it outside the booking flows: investigators read
recent events; a guard level changed by an operator is recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairslot.domain.accounts import Account
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["guard_level_changed", "recent_events"]


def recent_events(uow: UnitOfWork, deps: Deps, limit: int = 100,
                  kind: str | None = None) -> Sequence[Any]:
    return uow.events.recent(limit, kind)


def guard_level_changed(uow: UnitOfWork, deps: Deps, account: Account, group: str,
                        level: str) -> None:
    uow.events.append("guard.level", deps.clock.now(), account_id=account.id,
                      detail={"group": group, "level": level})
    uow.commit()
