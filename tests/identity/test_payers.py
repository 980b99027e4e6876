"""Payers are who the payment provider says pays, never the string a client typed. Before,
the payer quota keyed on the typed string: ``alipay:GangPay01`` and ``wechat:gangpay01``
paid where ``alipay:gangpay01`` had reached its limit of five patients."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.errors import InvalidInput
from fairslot.services.payments import TestPaymentProvider
from fairslot.web.app import create_app
from tests.conftest import World, api_book, api_pay


def test_spelling_variants_of_one_payer_are_one_payer() -> None:
    provider = TestPaymentProvider()
    variants = ["alipay:gangpay01", "alipay:GangPay01", "wechat:gangpay01",
                "card:gang.pay-01", " wechat:GANG_PAY01 "]
    assert len({provider.payer_of(v) for v in variants}) == 1
    assert provider.payer_of("alipay:gangpay02") != provider.payer_of("alipay:gangpay01")
    with pytest.raises(InvalidInput):
        provider.payer_of("paypal:gangpay01")


def test_payer_variants_cannot_dodge_the_payer_quota(world: World) -> None:
    client = TestClient(create_app(world.platform))
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    paid = []
    for n, payer in enumerate(["alipay:gangpay01"] * 5 + ["alipay:GangPay01",
                                                            "wechat:gangpay01"]):
        _, (patient_id,), token = world.patient_account(f"mule{n:02d}")
        clock.advance(61)  # one test client is one device: stay under its screen limit
        r = api_book(client, token, world.session_ids[0], patient_id, clock)
        assert r.status_code == 201, r.text
        r = api_pay(client, token, r.json()["id"], payer, clock)
        paid.append(r.json().get("code", r.json().get("status")))
    assert paid == ["paid"] * 5 + ["quota_payer_patients"] * 2
