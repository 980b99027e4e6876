"""Wires fairslot together: settings, clock, keys, database and the providers behind each
external service (identity check, payment), real or dev implementation by configuration."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from fairslot.clock import Clock, SystemClock
from fairslot.config import Settings, get_settings
from fairslot.crypto import Keyring, install_keyring
from fairslot.services.identity import IdentityVerifier, RegistryVerifier
from fairslot.services.payments import PaymentProvider, TestPaymentProvider
from fairslot.storage.database import make_engine, make_session_factory
from fairslot.storage.uow import UnitOfWork

__all__ = ["Platform", "bootstrap"]


@dataclasses.dataclass
class Platform:
    settings: Settings
    clock: Clock
    keyring: Keyring
    engine: Engine
    session_factory: sessionmaker[Any]
    verifier: IdentityVerifier
    payments: PaymentProvider

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None,
              engine: Engine | None = None) -> Platform:
    settings = settings or get_settings()
    keyring = Keyring(settings.secret_bytes())
    install_keyring(keyring)
    engine = engine or make_engine(settings.database_url)
    factory = make_session_factory(engine)
    return Platform(
        settings=settings,
        clock=clock or SystemClock(),
        keyring=keyring,
        engine=engine,
        session_factory=factory,
        verifier=RegistryVerifier(keyring),
        payments=TestPaymentProvider(),
    )
