"""The guard's Lua scripts, kept as ``.lua`` files beside this module (package data) and
read once, with the SHA-1 digest Redis knows them by."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = ["Script", "script"]


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


@functools.cache
def script(name: str) -> Script:
    """The script ``lua/<name>.lua`` of this package."""
    source = resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")
    sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    return Script(name, source, sha)
