"""What the logs may say about an exception: its type and where it was raised, never its
message. A database error's message carries the statement's parameters (a user name, an
identity number, an address), and the logs must hold no PII (docs/security.md)."""

from __future__ import annotations

import traceback

__all__ = ["describe"]


def describe(exc: BaseException, *, frames: int = 6) -> str:
    """``Type (cause: Type) at file:line in function < ...``: the innermost ``frames``
    frames of the traceback, innermost first, and the type of each chained cause."""
    names = [type(exc).__name__]
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        names.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    where = [f"{_short(f.filename)}:{f.lineno} in {f.name}"
             for f in traceback.extract_tb(exc.__traceback__)[-frames:]]
    kind = names[0] + (f" (from {' < '.join(names[1:])})" if names[1:] else "")
    return kind + (" at " + " < ".join(reversed(where)) if where else "")


def _short(filename: str) -> str:
    marker = "/fairslot/"
    at = filename.rfind(marker)
    return "fairslot/" + filename[at + len(marker):] if at >= 0 else filename.rsplit("/", 1)[-1]
