"""Wires fairslot together: settings, clock, randomness, keys, database and the providers
behind each external service (identity check, payment), real or development implementation
by configuration. The web app, the CLI, the scheduler and the simulator build a ``Platform``
here and run use cases through it; the services themselves never see it."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from fairslot.clock import Clock, SystemClock
from fairslot.config import Settings, get_settings
from fairslot.crypto import Keyring
from fairslot.randomness import Randomness, SystemRandomness
from fairslot.services.deps import Deps, Units
from fairslot.services.identity import DemoVerifier, IdentityVerifier, RegistryVerifier
from fairslot.services.messaging import Messenger, messenger_from_settings
from fairslot.services.payments import PaymentProvider, TestPaymentProvider
from fairslot.storage.database import make_engine, make_session_factory, ping
from fairslot.storage.keys import bind_keyring
from fairslot.storage.repositories import EventLogWriter, RecordedEvent
from fairslot.storage.uow import CommitHook, UnitOfWork

if TYPE_CHECKING:
    from fairslot.beacon import BeaconSource
    from fairslot.consortium.service import Consortium

__all__ = ["Platform", "bootstrap"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclasses.dataclass
class Platform:
    settings: Settings
    clock: Clock
    random: Randomness
    keyring: Keyring
    engine: Engine
    session_factory: sessionmaker[Any]
    verifier: IdentityVerifier
    payments: PaymentProvider
    messenger: Messenger = dataclasses.field(default_factory=Messenger)
    on_commit: list[CommitHook] = dataclasses.field(default_factory=list)
    consortium: Consortium | None = None
    """The list shared with other hospitals (None when ``consortium_enabled`` is off)."""
    beacon_source: BeaconSource | None = None
    """Overrides the configured chain's beacon source (tests: a chain that is late)."""

    @functools.cached_property
    def deps(self) -> Deps:
        return Deps(settings=self.settings, clock=self.clock, random=self.random,
                    keyring=self.keyring, verifier=self.verifier, payments=self.payments,
                    shared_list=self.consortium, messenger=self.messenger,
                    beacon_source=self.beacon_source)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.keyring, on_commit=self.on_commit)

    @property
    def units(self) -> Units:
        return self.uow

    def run(self, use_case: Callable[Concatenate[UnitOfWork, Deps, P], T],
            *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one use case in a unit of work of its own (the CLI, the simulator, tests)."""
        with self.uow() as uow:
            return use_case(uow, self.deps, *args, **kwargs)

    def run_job(self, job: Callable[[Units, Deps], T]) -> T:
        """Run a job that works in several transactions (a draw per round)."""
        return job(self.uow, self.deps)

    def write_events(self, rows: list[dict[str, Any]]) -> None:
        """Store a batch of event rows outside any use case (the access log, the guard's
        decisions), in a transaction of its own, then hand them to the commit hooks (the
        monitor's publisher) like a unit of work's events."""
        EventLogWriter(self.engine).write(rows)
        if self.on_commit and rows:
            recorded = [RecordedEvent(row["kind"], row["at"],
                                      {k: v for k, v in row.items() if k not in ("kind", "at")})
                        for row in rows]
            for hook in self.on_commit:
                hook(recorded)

    def ping(self) -> None:
        """Raises when the database does not answer (for the readiness check)."""
        ping(self.engine)

    def with_clock(self, clock: Clock) -> Platform:
        """The same platform on another clock (the demo writes its history on a clock that
        moves through the past)."""
        return dataclasses.replace(self, clock=clock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None,
              engine: Engine | None = None, random: Randomness | None = None) -> Platform:
    settings = settings or get_settings()
    keyring = Keyring(settings.secret_bytes())
    engine = engine or make_engine(settings.database_url,
                                   pool_size=settings.database_pool_size,
                                   max_overflow=settings.database_pool_overflow,
                                   pool_timeout=settings.database_pool_timeout)
    bind_keyring(engine, keyring)
    clock = clock or SystemClock()
    consortium = None
    if settings.consortium_enabled:
        from fairslot.consortium.service import Consortium

        consortium = Consortium(engine, clock)
    return Platform(
        settings=settings,
        clock=clock,
        random=random or SystemRandomness(),
        keyring=keyring,
        engine=engine,
        session_factory=make_session_factory(engine),
        verifier=(DemoVerifier(keyring) if settings.identity_provider == "demo"
                  else RegistryVerifier(keyring)),
        payments=TestPaymentProvider(),
        consortium=consortium,
        messenger=messenger_from_settings(settings, clock or SystemClock()),
    )
