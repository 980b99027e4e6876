"""Settings, read once from ``FAIRSLOT_*`` environment variables (see docs/configuration.md)."""

from __future__ import annotations

import functools
import ipaddress
import zoneinfo
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAIRSLOT_", extra="ignore")

    # Storage and shared state
    database_url: str = "sqlite:///var/fairslot.db"
    redis_url: str | None = None
    """Redis for shared rate-limit and short-lived guard state; unset means in-process."""

    # The master secret. PII encryption, blind indexes, tokens and cookies use keys derived
    # from it (HKDF with a distinct label each), so one secret is all an operator keeps.
    secret_key: SecretStr | None = None

    # The hospital
    timezone: str = "Asia/Shanghai"

    # Identity rules
    max_patients_per_account: int = Field(5, ge=1)
    max_accounts_per_phone: int = Field(2, ge=1)

    # Booking rules
    payment_deadline_minutes: int = Field(15, ge=1)
    cancel_cutoff_hours: int = Field(12, ge=0)
    """Patients may cancel until this many hours before the session starts."""
    no_show_grace_minutes: int = Field(30, ge=0)
    """A paid booking not checked in this long after its session ends becomes a no-show."""
    session_minutes: int = Field(240, ge=30)

    # Accounts
    login_attempts_per_minute: int = Field(5, ge=1)
    auth_token_hours: int = Field(12, ge=1)
    password_min_length: int = Field(8, ge=6)

    # Network
    trusted_proxies: list[str] = Field(default_factory=list)
    """CIDRs of reverse proxies whose X-Forwarded-For is believed."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    scheduler: bool = True
    """Run the in-process scheduler (payment expiry, no-shows, draws) inside ``serve``."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def secret_bytes(self) -> bytes:
        if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
            raise RuntimeError(
                "FAIRSLOT_SECRET_KEY is not set or shorter than 32 characters; "
                "generate one with `fairslot secret new`"
            )
        return self.secret_key.get_secret_value().encode()


@functools.cache
def get_settings() -> Settings:
    return Settings()
