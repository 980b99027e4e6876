"""Payment behind a provider interface. The only provider so far is the test provider, which
accepts any well-formed payer account and records it: payer data is evidence later."""

from __future__ import annotations

import re
import secrets
from typing import Protocol

from fairslot.domain.errors import InvalidInput

__all__ = ["PaymentProvider", "TestPaymentProvider", "normalize_payer"]

_PAYER = re.compile(r"^(alipay|wechat|card):[A-Za-z0-9_.@+\-]{3,64}$")


def normalize_payer(raw: str) -> str:
    payer = raw.strip()
    if not _PAYER.match(payer):
        raise InvalidInput(
            "a payer account is method:identifier, e.g. alipay:user@example.com, "
            "wechat:wxid_abc or card:6222...",
            code="invalid_payer",
        )
    return payer


class PaymentProvider(Protocol):
    name: str

    def charge(self, payer_account: str, amount_cents: int, reference: str) -> str:
        """Take the payment; return the provider's transaction reference."""
        ...

    def refund(self, provider_ref: str, amount_cents: int) -> None: ...


class TestPaymentProvider:
    """Always succeeds; keeps no money. For the demo, the tests and the simulator."""

    name = "test"

    def charge(self, payer_account: str, amount_cents: int, reference: str) -> str:
        return f"test-{secrets.token_hex(8)}"

    def refund(self, provider_ref: str, amount_cents: int) -> None:
        return None
