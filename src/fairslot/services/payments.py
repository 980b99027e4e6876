"""Payment behind a provider interface. The only provider so far is the test provider, which
takes no money but behaves like a real one where it matters: a charge or refund is
idempotent by its reference (a retry never charges twice), it can be told to fail, and it
remembers what it was asked, so tests can see that a refund really went through it."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import threading
import unicodedata
from typing import Protocol

from fairslot.domain.errors import FairslotError, InvalidInput

__all__ = ["PaymentFailed", "PaymentProvider", "TestPaymentProvider", "identify_payer",
           "normalize_payer", "payer_key"]

# cash and insurance (a medical-insurance card) are taken at the registration desk only.
_PAYER = re.compile(r"^(alipay|wechat|card|cash|insurance):[A-Za-z0-9_.@+\-]{3,64}$")


class PaymentFailed(FairslotError):
    """The provider refused or could not be reached; nothing was taken."""

    code = "payment_failed"
    status = 502
    title = "Payment failed"


def normalize_payer(raw: str) -> str:
    payer = raw.strip()
    if not _PAYER.match(payer):
        raise InvalidInput(
            "a payer account is method:identifier, e.g. alipay:user@example.com, "
            "wechat:wxid_abc or card:6222...",
            code="invalid_payer",
        )
    method, ident = payer.split(":", 1)
    # Account identifiers are case-insensitive at the providers: one payer, one spelling.
    return f"{method}:{ident.lower()}"


def identify_payer(provider: PaymentProvider, credential: str) -> tuple[str, str]:
    """(payer id, record): the provider's id of the payer, which quotas and evidence key
    on, and what the payment row keeps, the method as typed before it (``card:test:...``:
    "paid by card" stays evidence when the payer's id is hidden)."""
    method = normalize_payer(credential).split(":", 1)[0]
    payer = provider.payer_of(credential)
    return payer, f"{method}:{payer}"


def payer_key(provider: PaymentProvider, value: str) -> str:
    """The provider's id of the payer ``value`` names, for the shared list: ``value`` may be
    that id already (``test:3f...``), a payment as fairslot records it (``alipay:test:3f...``,
    what an investigation reads) or a payer account as typed (``alipay:GangPay01``). A typed
    account never holds a second colon (``normalize_payer``), so the three cannot be taken
    for one another."""
    text = value.strip()
    prefix = provider.name + ":"
    if text.startswith(prefix):
        return text
    _method, _, rest = text.partition(":")
    if rest.startswith(prefix):
        return rest
    return provider.payer_of(text)


class PaymentProvider(Protocol):
    name: str

    def payer_of(self, credential: str) -> str:
        """Who pays: the provider's own id of the payer behind ``credential`` (what the
        patient's payment app handed over), normalised. Quotas and evidence key on this,
        never on what a client typed. Raises ``InvalidInput`` for a credential the provider
        does not accept."""
        ...

    def charge(self, payer_account: str, amount_cents: int, reference: str) -> str:
        """Take the payment; return the provider's transaction reference. The same
        ``reference`` twice is one charge (returns the first one's transaction)."""
        ...

    def refund(self, provider_ref: str, amount_cents: int, reference: str) -> str:
        """Give the money back; idempotent by ``reference``. Raises ``PaymentFailed``."""
        ...


@dataclasses.dataclass
class TestPaymentProvider:
    """Always succeeds unless told to fail; keeps no money. For the demo, the tests and the
    simulator."""

    __test__ = False  # a provider, not a pytest test class
    name: str = "test"
    fail_next_charges: int = 0
    fail_next_refunds: int = 0
    charges: dict[str, str] = dataclasses.field(default_factory=dict)
    refunds: dict[str, str] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def payer_of(self, credential: str) -> str:
        """The test provider stands for a gateway that answers with the funding account
        behind every method it takes (as a bank-card or UnionPay payer id does): one holder
        is one payer whatever the method and however the name is spelt, so
        ``alipay:GangPay01``, ``wechat:gangpay01`` and ``card:gang.pay-01`` are one payer.
        (A real adapter returns its provider's id: Alipay's buyer id, WeChat's openid.)"""
        _method, ident = normalize_payer(credential).split(":", 1)
        holder = unicodedata.normalize("NFKC", ident).casefold()
        holder = re.sub(r"[._\-+\s]", "", holder.split("@", 1)[0]) + (
            "@" + holder.split("@", 1)[1] if "@" in holder else "")
        return f"{self.name}:{hashlib.sha256(holder.encode()).hexdigest()[:20]}"

    def charge(self, payer_account: str, amount_cents: int, reference: str) -> str:
        with self._lock:
            if reference in self.charges:
                return self.charges[reference]
            if self.fail_next_charges > 0:
                self.fail_next_charges -= 1
                raise PaymentFailed("the payment provider declined the charge")
            ref = f"test-{secrets.token_hex(8)}"
            self.charges[reference] = ref
            return ref

    def refund(self, provider_ref: str, amount_cents: int, reference: str) -> str:
        with self._lock:
            if reference in self.refunds:
                return self.refunds[reference]
            if self.fail_next_refunds > 0:
                self.fail_next_refunds -= 1
                raise PaymentFailed("the payment provider could not be reached")
            ref = f"refund-{secrets.token_hex(8)}"
            self.refunds[reference] = ref
            return ref
