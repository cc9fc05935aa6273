"""Help texts are plain text: the command group that shows ``[online.NAME]`` as written.

Typer renders help with Rich markup, where ``[online.NAME]`` is a style tag
and vanishes (``--schedule: An  table of judgeq.toml``). judgeq's help texts
name config tables in brackets and never mean markup, so the root group
escapes every help text of the tree once, when it is built: the docstrings and
``help=`` strings stay as they read in judgeq.toml and the README.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

__all__ = ["PlainHelpGroup"]


class PlainHelpGroup(TyperGroup):
    """The root ``judgeq`` group: its help texts and every subcommand's, escaped for Rich (shown literally)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _escape_tree(self)


def _escape_tree(command: Any) -> None:
    """Escape a command's texts, and its subcommands' (typer's own click: typer 0.29 vendors it)."""
    from rich.markup import escape

    for attr in ("help", "short_help", "epilog"):
        text = getattr(command, attr, None)
        if text:
            setattr(command, attr, escape(text))
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            param.help = escape(text)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _escape_tree(sub)
