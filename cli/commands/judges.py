"""``judgeq judges``: the configured and built-in judges with their versions (``cli.views.judge_list``)."""

from __future__ import annotations

import typer

from cli.options import JsonOpt
from cli.state import settings_of


def judges(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the configured and built-in judges with their versions."""
    from cli.views.judge_list import show_judges

    show_judges(settings_of(ctx).config, json_out=json_out)
