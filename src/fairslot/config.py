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
    """Patients may cancel online until this many hours before the session starts; after
    that only the registration desk can."""
    credit_late_cancel_hours: int = Field(24, ge=0)
    """A cancellation less than this many hours before the session is a late one and counts
    against the patient's credit (never less than the online cut-off)."""
    credit_lapsed_holds_per_offence: int = Field(2, ge=0)
    """Held slots left unpaid until they expire: every this-many within a year count as one
    offence (0: never)."""
    no_show_grace_minutes: int = Field(30, ge=0)
    """A paid booking not checked in this long after its session ends becomes a no-show."""
    session_minutes: int = Field(240, ge=30)

    # Accounts
    login_attempts_per_minute: int = Field(5, ge=1)
    auth_token_hours: int = Field(12, ge=1)
    password_min_length: int = Field(8, ge=6)
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_memory_kib: int = Field(65536, ge=32)
    """Argon2id cost (the library's defaults); tests lower them, production keeps them."""
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
    guard_device_cookie_secure: bool = True
    guard_device_header: str = "X-Device-Id"
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
    draw_chain: Literal["local", "quicknet", "default"] = "local"
    """The drand chain whose beacon a round names when it opens (docs/draw.md). Production:
    "quicknet", the League of Entropy's chain (public key, genesis 1692803367, period 3 s,
    chain hash 52db9ba7...e971 built in). "local" is a one-node chain whose key the hospital
    holds: the demo and tests run offline with it, but it proves nothing to a patient."""
    draw_chain_relays: list[str] = Field(default_factory=lambda: [
        "https://api.drand.sh", "https://api2.drand.sh", "https://api3.drand.sh",
        "https://drand.cloudflare.com"])
    """drand HTTP relays tried in turn for a League of Entropy beacon (never trusted: every
    beacon is checked against the chain's public key)."""
    draw_beacon_delay_seconds: int = Field(30, ge=0, le=3600)
    """A round's beacon is the chain's first round at or after its close plus this delay,
    which leaves the freeze time to be signed and logged before the beacon exists."""
    draw_signing_key: SecretStr | None = None
    """The hospital's Ed25519 draw key, 64 hex digits. Unset: made once in var/ as
    draw-signing.key (mode 0600). Its public half is in every round document."""
    draw_local_chain_key: SecretStr | None = None
    """The local chain's secret, 64 hex digits. Unset: made once in var/ as
    draw-local-chain.key."""
    draw_local_chain_genesis: int = Field(1767225600, ge=0)
    """The local chain's round 1 (POSIX seconds); its period is 3 s, like quicknet's."""
    waitlist_enabled: bool = True
    """Freed draw slots go to the waitlist. Off only for ablation in the simulator."""
    quotas_enabled: bool = True
    credit_enabled: bool = True
    quota_active_bookings: int = Field(4, ge=1)
    quota_departments_per_week: int = Field(3, ge=1)
    quota_patients_per_account: int = Field(5, ge=1)
    quota_patients_per_phone: int = Field(5, ge=1)
    quota_patients_per_payer: int = Field(5, ge=1)
    quota_window_days: int = Field(30, ge=1)
    """The window in which patients served (by an account, phone or payer) are counted."""
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
