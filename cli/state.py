"""What the root callback hands every command: its settings and ``--debug``, carried in typer's context.

``judgeq``'s global flags are parsed once, by the root callback of
``cli.main``, into a :class:`CliState` kept as ``ctx.obj``; a command asks
:func:`settings_of` for them. Its ``settings`` is the process's one settings
object (every package's section, ``scheduler.settings.CliSettings``): a
worker, beat or Flower started by ``judgeq`` runs its tasks with it. Nothing lives in a module global, so two
invocations in one process (tests' ``CliRunner``) never see each other's flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from scheduler.settings import CliSettings


@dataclass
class CliState:
    """One invocation's global flags: ``settings`` (the flags over the environment) and ``debug``.

    ``cli.main.main`` makes it before the app runs and reads ``debug`` after an
    error, when the context is gone; the root callback fills it in.
    """

    settings: CliSettings | None = None
    debug: bool = False


def settings_of(ctx: typer.Context) -> CliSettings:
    """The settings of the command being run: its global flags over the environment (read once, when needed)."""
    state = ctx.find_object(CliState)
    if state is not None and state.settings is not None:
        return state.settings
    from scheduler.settings import CliSettings

    return CliSettings()
