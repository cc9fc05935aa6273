"""Every ``--help`` shows bracketed names (``[online.NAME]``) as the source writes them.

Typer renders help with Rich markup, which took ``[online.NAME]`` for a style
tag and dropped it. The texts are read from the source (docstrings and
``help=`` of every registered command and group), independently of how the
CLI escapes them, and each bracketed name must appear in the rendered help.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from typer.models import ParameterInfo
from typer.testing import CliRunner

from cli.main import app

pytestmark = pytest.mark.timeout(60)

BRACKETED = re.compile(r"\[[^\]\s]*[A-Za-z][^\]\s]*\]")


def _texts(callback: Any) -> list[str]:
    """A command's docstring and its parameters' help, as written in the source."""
    texts = [inspect.getdoc(callback) or ""]
    hints = typing.get_type_hints(callback, include_extras=True)
    for name, parameter in inspect.signature(callback).parameters.items():
        infos = [m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, ParameterInfo)]
        if isinstance(parameter.default, ParameterInfo):
            infos.append(parameter.default)
        texts += [info.help for info in infos if info.help]
    return texts


def _commands(typer_app: Any = app, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(command path, the texts its --help shows) for the app, its groups and every command."""
    listed: list[str] = [typer_app.info.help or ""]
    if typer_app.registered_callback is not None:
        listed += _texts(typer_app.registered_callback.callback)[1:]  # the group's options
    for info in typer_app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        texts = _texts(info.callback)
        listed.append(texts[0].split("\n\n")[0])  # the group lists each command's first paragraph
        yield (*path, name), texts
    for group in typer_app.registered_groups:
        listed.append(group.typer_instance.info.help or "")
        yield from _commands(group.typer_instance, (*path, group.name))
    yield path, listed


CASES = sorted((path, names) for path, texts in _commands()
               if (names := sorted({m for t in texts for m in BRACKETED.findall(t)})))


def test_the_source_has_bracketed_names_to_check() -> None:
    assert any("[online.NAME]" in names for _, names in CASES), CASES  # the test checks something


@pytest.mark.parametrize(("path", "names"), CASES, ids=[" ".join(p) or "judgeq" for p, _ in CASES])
def test_help_shows_bracketed_names_literally(path: tuple[str, ...], names: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, result.output
    missing = [name for name in names if name not in result.output]
    assert not missing, f"judgeq {' '.join(path)} --help lost {missing}:\n{result.output}"
