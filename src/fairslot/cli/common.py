"""What several commands share: loading settings (with the demo's generated secret), and
bootstrapping the platform with a one-line error when settings are wrong."""

from __future__ import annotations

import os
import pathlib

from pydantic import SecretStr, ValidationError

from fairslot.bootstrap import Platform, bootstrap
from fairslot.cli.main import CliError
from fairslot.config import Settings
from fairslot.crypto import new_secret

__all__ = ["DEMO_DIR", "demo_secret", "load_platform", "load_settings"]

DEMO_DIR = pathlib.Path("var")


def demo_secret() -> str:
    """The demo's master secret: made once, kept in var/ (never in the repository)."""
    path = DEMO_DIR / "demo-secret.key"
    if not path.exists():
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_secret())
    return path.read_text().strip()


def load_settings(*, demo: bool = False) -> Settings:
    if demo:
        # The demo's codes and notifications go to the development outbox, shown at
        # /dev/outbox; its identity provider takes any well-formed ID number with a
        # consistent name. Set in the environment, so the server's workers see them too.
        os.environ.setdefault("FAIRSLOT_DEV_OUTBOX_PAGE", "true")
        os.environ.setdefault("FAIRSLOT_IDENTITY_PROVIDER", "demo")
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CliError(f"setting FAIRSLOT_{field.upper()}: {first['msg']}") from None
    if demo and settings.secret_key is None:
        settings = settings.model_copy(update={"secret_key": SecretStr(demo_secret())})
        os.environ["FAIRSLOT_SECRET_KEY"] = demo_secret()
    if settings.secret_key is not None:  # set but unusable: say so now, in one line
        try:
            settings.secret_bytes()
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
    return settings


def load_platform(*, demo: bool = False) -> Platform:
    settings = load_settings(demo=demo)
    try:
        settings.secret_bytes()
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    return bootstrap(settings)
