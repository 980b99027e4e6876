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
    login_attempts_per_minute: int = Field(10, ge=1)
    """Log-in attempts a minute per account (the guard's ``login`` limit; docs/guard.md)."""
    auth_token_hours: int = Field(12, ge=1)
    password_min_length: int = Field(8, ge=6)
    session_cookie_secure: bool | None = None
    """Mark the pages' session cookie Secure; unset means Secure when the request came over
    HTTPS (behind a TLS proxy, set it to true)."""

    # Network
    trusted_proxies: list[str] = Field(default_factory=list)
    """CIDRs of reverse proxies whose X-Forwarded-For is believed."""

    # Request guard (see docs/guard.md). Limits are "N/period" strings of the `limits`
    # library; `guard_limits` overrides the built-in table per route group and key, e.g.
    # FAIRSLOT_GUARD_LIMITS='{"booking": {"ip": "30/minute"}}'.
    guard_limits: dict[str, dict[str, str]] = Field(default_factory=dict)
    guard_default_level: Literal["normal", "elevated", "under_attack"] = "normal"
    guard_redis_prefix: str = "fairslot:guard:"
    guard_redis_retry_seconds: float = Field(2.0, gt=0)
    """First back-off before Redis is tried again after a failure; doubles up to 60 s."""
    guard_token_min_age_seconds: float = Field(1.5, ge=0)
    guard_token_ttl_seconds: int = Field(600, ge=10)
    guard_challenge_ttl_seconds: int = Field(120, ge=10)
    guard_pow_base_maxnumber: int = Field(10_000, ge=1_000)
    guard_pow_max_maxnumber: int = Field(400_000, ge=1_000)
    guard_device_cookie_secure: bool | None = None
    """``Secure`` on the device cookie: unset means when the request came over HTTPS (TLS
    here, or a trusted proxy's X-Forwarded-Proto)."""
    guard_device_header: str = "X-Device-Id"
    guard_device_young_seconds: float = Field(900.0, ge=0)
    """A device minted less than this long ago is new, which counts as risk."""
    guard_ledger_path: str = "var/guard-ledger.db"
    """SQLite file remembering spent action tokens and challenges without Redis (and while
    Redis is down); empty keeps them in memory only (lost on restart)."""
    guard_login_free_failures: int = Field(3, ge=0)
    guard_login_backoff_after: int = Field(6, ge=1)
    guard_login_backoff_base_seconds: float = Field(30.0, gt=0)
    guard_login_backoff_max_seconds: float = Field(900.0, gt=0)
    guard_login_failure_memory_seconds: int = Field(86_400, ge=60)
    guard_login_known_device_days: int = Field(90, ge=1)
    """Log-in throttling per account (docs/guard.md): failures before a proof of work,
    failures before back-off, its first wait and ceiling, how long failures are
    remembered, how long a device that signed in stays known."""
    guard_device_accounts_risky: int = Field(3, ge=1)
    """A device that has signed in to more distinct accounts than this counts as risky."""
    guard_shed_browsing_at: int = Field(200, ge=1)
    guard_shed_other_at: int = Field(400, ge=1)
    guard_shed_critical_at: int = Field(800, ge=1)
    """In-flight requests per worker at which browsing, then search/login/registration,
    then booking/entering/payment are refused with 503."""
    guard_exclusive_seconds: float = Field(15.0, gt=0)
    """Longest time one account's in-flight booking holds its slot if never released."""
    guard_allow_event_every: int = Field(100, ge=1)
    """Allow decisions are aggregated: one event stands for this many allows."""
    guard_deny_cache_seconds: float = Field(1.0, ge=0)
    """A worker refuses a key it saw over its limit for this long without asking Redis."""
    guard_browsing_sync_seconds: float = Field(0.1, ge=0, le=5)
    """Browsing limits are counted in each worker and shared through Redis this often, so
    that a page view never waits for Redis; 0 checks them in Redis on every request."""

    # Fair release (see docs/draw.md)
    draw_window_hours: int = Field(24, ge=1, le=24 * 14)
    """A draw session's request window opens this long before its release time."""
    draw_payment_minutes: int = Field(240, ge=5)
    """A draw winner has this long to pay before the slot moves to the waitlist."""
    waitlist_offer_minutes: int = Field(60, ge=5)
    """A waitlisted patient offered a freed slot has this long to pay for it."""
    leftover_delay_min_seconds: int = Field(60, ge=0)
    leftover_delay_max_seconds: int = Field(1800, ge=0)
    """A slot nobody on the waitlist wants re-opens first-come-first-served at a moment
    drawn uniformly (CSPRNG) in this interval, so a bot cannot sit waiting for it."""
    draw_beacon_source: str = ""
    """A public random value a round mixes into its draw, named when the window opens
    (e.g. "drand quicknet, first round after the close"). Empty: no beacon. When set, an
    operator enters the value after the close and the draw waits for it."""
    waitlist_enabled: bool = True
    """Freed draw slots go to the waitlist. Off only for ablation in the simulator."""
    quotas_enabled: bool = True
    credit_enabled: bool = True
    quota_active_bookings: int = Field(4, ge=1)
    quota_departments_per_week: int = Field(3, ge=1)
    quota_patients_per_account: int = Field(5, ge=1)
    quota_patients_per_phone: int = Field(5, ge=1)
    quota_patients_per_payer: int = Field(5, ge=1)
    credit_suspension_days: list[int] = Field(default_factory=lambda: [30, 60, 90])
    """Suspension for the 1st, 2nd, 3rd (and later) offence within a rolling year."""

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
