"""The demo's identity provider takes any well-formed ID number with a consistent name (issue
15: a new patient could not add anyone, "the ID number and name do not match a known
resident"), while the registry provider of tests and the simulator stays strict."""

from __future__ import annotations

import random

from fairslot.bootstrap import bootstrap
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_id_number
from fairslot.services.identity import DemoVerifier, RegistryVerifier
from tests.conftest import World, make_settings


def test_the_demo_provider_accepts_a_new_number_then_only_its_first_name(
        world: World) -> None:
    number = make_id_number(random.Random(11))
    first, other = Identity.parse(number, "欧阳娜"), Identity.parse(number, "欧阳明")
    demo = DemoVerifier(world.platform.keyring)
    strict = RegistryVerifier(world.platform.keyring)
    with world.platform.uow() as uow:
        assert not strict.verify(uow, first)
        assert demo.verify(uow, first) and demo.verify(uow, first)
        assert not demo.verify(uow, other)
        uow.commit()


def test_the_demo_setting_chooses_the_demo_provider(world: World) -> None:
    settings = make_settings(database_url=str(world.platform.engine.url),
                             identity_provider="demo")
    platform = bootstrap(settings, engine=world.platform.engine)
    assert isinstance(platform.verifier, DemoVerifier)
    assert not isinstance(world.platform.verifier, DemoVerifier)
