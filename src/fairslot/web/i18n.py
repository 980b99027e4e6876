"""The pages' languages: gettext catalogues for Chinese (the default) and English.

The source texts (msgids) are English; ``locale/zh_CN/LC_MESSAGES/messages.po`` translates
them to Chinese and ``locale/en/LC_MESSAGES/messages.po`` keeps them (an empty msgstr falls
back to the msgid). The ``.po`` files are compiled in memory when first needed, so a fresh
``pip install -e .`` or a source checkout needs no build step and a catalogue can never be
stale. A visitor's choice is the ``fs_lang`` cookie; without it, Chinese.

Regenerate the template after changing texts (``scripts/i18n.sh``), then update both
catalogues with ``pybabel update``."""

from __future__ import annotations

import dataclasses
import functools
import io
import pathlib
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from markupsafe import Markup
from starlette.requests import Request

__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "LANG_COOKIE",
    "N_",
    "Language",
    "language",
    "of_request",
    "template_callables",
    "translate",
    "translations",
]

LOCALE_DIR = pathlib.Path(__file__).parent / "locale"
LANG_COOKIE = "fs_lang"


@dataclasses.dataclass(frozen=True)
class Language:
    code: str  # the catalogue's directory and the cookie's value
    tag: str  # the BCP 47 tag for the lang attribute
    name: str  # the language's own name, shown on the switch


LANGUAGES = {
    "zh_CN": Language("zh_CN", "zh-CN", "中文"),
    "en": Language("en", "en", "English"),
}
DEFAULT = LANGUAGES["zh_CN"]


def N_(text: str) -> str:
    """Marks a text for extraction; it is translated where it is shown."""
    return text


@functools.cache
def translations(code: str) -> Translations:
    """The catalogue of ``code``, compiled from its ``.po`` file once per process."""
    path = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


def language(code: str | None) -> Language:
    return LANGUAGES.get(code or "", DEFAULT)


def of_request(request: Request) -> Language:
    """The visitor's language: the ``fs_lang`` cookie, or Chinese."""
    return language(request.cookies.get(LANG_COOKIE))


def known(lang: Language, text: str) -> bool:
    """Whether the catalogue of ``lang`` has its own words for ``text`` (the English
    catalogue knows every English text)."""
    if lang.code == "en":
        return True
    catalogue = translations(lang.code)
    return catalogue.gettext(text) != text


def translate(lang: Language, text: str, **values: Any) -> Markup:
    """``text`` in ``lang``, as markup; ``%(name)s`` placeholders are filled from
    ``values``, each escaped."""
    # The catalogues are ours; values put into them are escaped by the % below.
    return Markup(translations(lang.code).gettext(text)) % values  # noqa: S704


def template_callables(lang: Language) -> dict[str, Any]:
    """``gettext``, ``ngettext`` and ``_`` for a template, new style: the result is
    autoescaped markup and ``%(name)s`` placeholders are filled (and escaped) from keyword
    arguments, so ``{% trans %}`` blocks and ``_("...", n=1)`` calls both work."""
    catalogue = translations(lang.code)

    def gettext(text: str, **values: Any) -> Markup:
        return translate(lang, text, **values)

    def ngettext(singular: str, plural: str, n: int, **values: Any) -> Markup:
        values.setdefault("num", n)
        return Markup(catalogue.ngettext(singular, plural, n)) % values  # noqa: S704

    return {"gettext": gettext, "ngettext": ngettext, "_": gettext}
