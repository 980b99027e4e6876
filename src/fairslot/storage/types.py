"""Column types: UTC datetimes on every database, enums stored as text, encrypted PII."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from fairslot.storage.keys import keyring_of

__all__ = ["EncryptedText", "StrEnum", "UTCDateTime"]


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Stored as UTC; always returned timezone-aware (SQLite would return naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class StrEnum(sa.types.TypeDecorator[enum.StrEnum]):
    impl = sa.String(24)
    cache_ok = True

    def __init__(self, enum_type: type[enum.StrEnum]) -> None:
        super().__init__()
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_type(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> enum.StrEnum | None:
        return None if value is None else self.enum_type(value)

    def __repr__(self) -> str:
        return "sa.String(24)"


class EncryptedText(sa.types.TypeDecorator[str]):
    """PII column: AES-GCM ciphertext at rest, clear text in Python, bound to its column."""

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else keyring_of(dialect).encrypt(value, context=self.context)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).decrypt(bytes(value), context=self.context)

    def __repr__(self) -> str:
        return "sa.LargeBinary()"
