"""What a use case needs besides its unit of work: settings, the clock, randomness, the
keyring and the providers of the outside world. Built once by ``fairslot.bootstrap`` (real
or development providers, by configuration); tests and the simulator build their own."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher

from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.crypto import Keyring
from fairslot.randomness import Randomness
from fairslot.services.identity import IdentityVerifier
from fairslot.services.messaging import Messenger
from fairslot.services.payments import PaymentProvider
from fairslot.services.views import ViewCache
from fairslot.storage.uow import UnitOfWork

if TYPE_CHECKING:
    from fairslot.beacon import BeaconSource
    from fairslot.domain.draw.signing import DrawKey
    from fairslot.services.shared_list import SharedList

__all__ = ["Deps", "Units"]

Units = Callable[[], UnitOfWork]
"""Makes a fresh unit of work: for jobs that work in several transactions (a draw per
round, a batch of expiries)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Deps:
    settings: Settings
    clock: Clock
    random: Randomness
    keyring: Keyring
    verifier: IdentityVerifier
    payments: PaymentProvider
    shared_list: SharedList | None = None
    """The consortium's shared list (``fairslot.consortium``); None: not consulted."""
    messenger: Messenger = dataclasses.field(default_factory=Messenger)
    """The channels that carry codes and notifications (the development outbox unless
    configured otherwise)."""
    draw_signer: DrawKey | None = None
    """The hospital's draw key; None: from the settings or var/ (``draw_key``)."""
    beacon_source: BeaconSource | None = None
    """Where beacons come from; None: the configured chain's (``beacons``)."""
    var_dir: Path = Path("var")

    @functools.cached_property
    def draw_key(self) -> DrawKey:
        """The hospital's Ed25519 key that signs every statement and receipt of the draw."""
        if self.draw_signer is not None:
            return self.draw_signer
        from fairslot.draw_keys import draw_key

        return draw_key(self.settings, self.var_dir)

    @functools.cached_property
    def _draw_keys(self) -> dict[str, DrawKey]:
        from fairslot.draw_keys import previous_draw_keys

        keys = {k.public_hex: k for k in previous_draw_keys(self.settings)}
        keys[self.draw_key.public_hex] = self.draw_key
        return keys

    def round_key(self, public_hex: str | None) -> DrawKey:
        """The draw key that signed a round's opening (``public_hex``, as stored with it),
        which signs the rest of that round: its freeze, result and receipts. None (an
        opening stored before keys were kept): the current key."""
        if public_hex is None:
            return self.draw_key
        found = self._draw_keys.get(public_hex)
        if found is None:
            from fairslot.domain.errors import Conflict

            raise Conflict("the draw key that signed this round's opening is not configured "
                           "(FAIRSLOT_DRAW_PREVIOUS_SIGNING_KEYS)", code="draw_key_missing",
                           key=public_hex)
        return found

    @functools.cached_property
    def beacons(self) -> BeaconSource:
        """The source of the configured chain's beacons (never trusted: checked offline)."""
        if self.beacon_source is not None:
            return self.beacon_source
        import httpx

        from fairslot.draw_keys import beacon_source

        return beacon_source(self.settings, self.var_dir, self.clock,
                             httpx.Client(timeout=5.0))

    @functools.cached_property
    def hasher(self) -> PasswordHasher:
        """Argon2id at the configured cost."""
        return PasswordHasher(time_cost=self.settings.password_hash_time_cost,
                              memory_cost=self.settings.password_hash_memory_kib)

    @functools.cached_property
    def views(self) -> ViewCache:
        """This process's short memory of much-read figures (see ``services.views``)."""
        return ViewCache(self.clock)

    @functools.cached_property
    def dummy_hash(self) -> str:
        """A real hash to verify against when a username is unknown, so a miss costs the
        same time as a wrong password (made on first use, never at import)."""
        return self.hasher.hash(self.random.token_hex(16))
