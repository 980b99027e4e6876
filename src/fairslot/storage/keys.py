"""Which keyring encrypts and indexes the PII of a database: bound to its engine, never to
the process. Two platforms in one process (two hospitals in a test, the simulator beside a
server) each read and write with their own keys.

The column types and mapper hooks only see the engine's dialect, so the keyring rides on
the dialect object of that one engine (each ``create_engine`` makes its own)."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.engine import Dialect, Engine

from fairslot.crypto import Keyring

__all__ = ["bind_keyring", "follow_keyring", "keyring_of"]

_ATTRIBUTE = "fairslot_keyring"
_FOLLOWERS = "fairslot_keyring_followers"


def bind_keyring(engine: Engine, keyring: Keyring) -> None:
    """Make ``keyring`` the one this engine's PII columns and blind indexes use (and the
    engines that follow it: ``follow_keyring``)."""
    setattr(engine.dialect, _ATTRIBUTE, keyring)
    for other in getattr(engine.dialect, _FOLLOWERS, ()):
        setattr(other.dialect, _ATTRIBUTE, keyring)


def follow_keyring(engine: Engine, other: Engine) -> None:
    """Let ``other``, an engine on the same database, use ``engine``'s keyring: the one
    bound now, and any bound to ``engine`` later."""
    followers = getattr(engine.dialect, _FOLLOWERS, None)
    if followers is None:
        followers = weakref.WeakSet()
        setattr(engine.dialect, _FOLLOWERS, followers)
    followers.add(other)
    keyring = getattr(engine.dialect, _ATTRIBUTE, None)
    if isinstance(keyring, Keyring):
        setattr(other.dialect, _ATTRIBUTE, keyring)


def keyring_of(dialect: Dialect | Any) -> Keyring:
    keyring = getattr(dialect, _ATTRIBUTE, None)
    if not isinstance(keyring, Keyring):
        raise RuntimeError("no keyring is bound to this database engine: "
                           "build the platform with fairslot.bootstrap")
    return keyring
