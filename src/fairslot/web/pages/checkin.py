"""The check-in code: what a patient's QR code carries and the desk's scanner types back.

``FS1-<booking>-<mac>``: the booking number and 16 hex digits of an HMAC under a key derived
from the hospital's keyring, so a code cannot be made up for another booking. The code only
finds the booking; the desk still checks the patient's identity card (docs/pages.md)."""

from __future__ import annotations

import hashlib
import hmac
import re

import segno
from markupsafe import Markup

from fairslot.services.deps import Deps

__all__ = ["booking_of", "code_for", "qr_svg"]

_CODE = re.compile(r"FS1-(\d{1,10})-([0-9a-f]{16})")


def _mac(deps: Deps, booking_id: int) -> str:
    key = deps.keyring.derive("checkin-qr/v1")
    return hmac.new(key, f"booking:{booking_id}".encode(), hashlib.sha256).hexdigest()[:16]


def code_for(deps: Deps, booking_id: int) -> str:
    return f"FS1-{booking_id}-{_mac(deps, booking_id)}"


def booking_of(deps: Deps, text: str) -> int | None:
    """The booking a scanned code names, or None if it is not a genuine code."""
    match = _CODE.fullmatch(text.strip())
    if match is None:
        return None
    booking_id = int(match.group(1))
    if not hmac.compare_digest(match.group(2), _mac(deps, booking_id)):
        return None
    return booking_id


def qr_svg(text: str, title: str) -> Markup:
    """The QR code of ``text`` as inline SVG (no image request, no script)."""
    svg = segno.make(text, error="m").svg_inline(scale=5, title=title, dark="#000",
                                                light="#fff")
    # segno escapes the title; the rest is its own markup. role="img" makes screen
    # readers announce it by its title.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704
