"""Real-name verification behind a provider interface.

Hospitals contract "does this ID number belong to this name?" from an identity service. The
provider here answers from a registry table of known residents (keyed hashes only), filled by
the demo seed, tests and the simulator, so a checksum-valid but invented identity fails.

The demo's provider (``DemoVerifier``) behaves like a real one does for real people: any
well-formed ID number is somebody, and its name is the one it was first checked with; a
different name for the same number afterwards fails."""

from __future__ import annotations

from typing import Protocol

from fairslot.crypto import Keyring
from fairslot.domain.identity import Identity
from fairslot.storage.uow import UnitOfWork

__all__ = ["DemoVerifier", "IdentityVerifier", "RegistryVerifier"]


class IdentityVerifier(Protocol):
    def verify(self, uow: UnitOfWork, identity: Identity) -> bool:
        """True when the ID number belongs to a real person of that name."""
        ...

    def register(self, uow: UnitOfWork, identity: Identity) -> bool:
        """Add a known resident (registry-backed providers only); False if already known."""
        ...


class RegistryVerifier:
    def __init__(self, keyring: Keyring) -> None:
        self._keys = keyring

    def _keys_for(self, identity: Identity) -> tuple[str, str]:
        return (self._keys.blind_index("id_number", identity.id_number),
                self._keys.blind_index("resident", f"{identity.id_number}\x00{identity.name}"))

    def verify(self, uow: UnitOfWork, identity: Identity) -> bool:
        return uow.patients.resident_known(*self._keys_for(identity))

    def register(self, uow: UnitOfWork, identity: Identity) -> bool:
        return uow.patients.add_resident(*self._keys_for(identity))


class DemoVerifier(RegistryVerifier):
    """For the demo (``FAIRSLOT_IDENTITY_PROVIDER=demo``): an ID number not seen before is
    taken as a resident of the name it comes with; after that the number belongs to that
    name only. Never for a hospital: it verifies nothing about a real person."""

    def verify(self, uow: UnitOfWork, identity: Identity) -> bool:
        if super().verify(uow, identity):
            return True
        return self.register(uow, identity)
