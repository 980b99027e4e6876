"""Which keyring encrypts and indexes the PII of a database: bound to its engine, never to
the process. Two platforms in one process (two hospitals in a test, the simulator beside a
server) each read and write with their own keys.

The column types and mapper hooks only see the engine's dialect, so the keyring rides on
the dialect object of that one engine (each ``create_engine`` makes its own)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect, Engine

from fairslot.crypto import Keyring

__all__ = ["bind_keyring", "keyring_of", "share_keyring"]

_ATTRIBUTE = "fairslot_keyring"


def bind_keyring(engine: Engine, keyring: Keyring) -> None:
    """Make ``keyring`` the one this engine's PII columns and blind indexes use."""
    setattr(engine.dialect, _ATTRIBUTE, keyring)


def share_keyring(engine: Engine, other: Engine) -> None:
    """Give ``other``, an engine on the same database, ``engine``'s keyring, if it has one."""
    keyring = getattr(engine.dialect, _ATTRIBUTE, None)
    if isinstance(keyring, Keyring):
        bind_keyring(other, keyring)


def keyring_of(dialect: Dialect | Any) -> Keyring:
    keyring = getattr(dialect, _ATTRIBUTE, None)
    if not isinstance(keyring, Keyring):
        raise RuntimeError("no keyring is bound to this database engine: "
                           "build the platform with fairslot.bootstrap")
    return keyring
