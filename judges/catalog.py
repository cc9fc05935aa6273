"""Every local builtin, registered: the lookups that spec, config and the local judge type use.

Builtins register themselves when the module defining them is imported
(:func:`judges.registry.builtin`). This module imports each such module, so a
lookup here always sees all of them, while :mod:`judges.registry` imports no
judge and stays below them. A new module of builtins is added to the imports
below.
"""

from __future__ import annotations

from . import local  # noqa: F401 - registers the local builtins
from .errors import JudgeConfigError
from .registry import Builtin, registered


def builtins() -> dict[str, Builtin]:
    """Every registered local builtin, by name."""
    return dict(registered())


def get_builtin(name: str) -> Builtin:
    """The builtin called ``name``; JudgeConfigError listing the known ones otherwise."""
    known = registered()
    try:
        return known[name]
    except KeyError:
        raise JudgeConfigError(f"unknown builtin {name!r}; known builtins: {', '.join(sorted(known))}") from None
