"""Posting a drift alert to a webhook: JSON with a ``text`` field, which a Slack incoming webhook accepts as is.

The body is the check's JSON (``DriftReport.to_json``) plus ``text``, the
alert in words; Slack reads ``text`` and ignores the rest, other receivers
get every figure. One attempt with a timeout: an alert is also printed and
recorded, so a webhook that is down costs a message, never the check. The
URL is never logged (a Slack webhook URL is a credential): errors name its
host only.

The text carries trace metadata (slice labels such as ``locale=…``), which
whoever writes traces controls, so it is escaped for Slack's markup before it
is sent (:func:`slack_text`): ``&``, ``<`` and ``>`` become ``&amp;``,
``&lt;`` and ``&gt;``, as Slack's formatting reference asks, so ``<!channel>``,
``<@U123>`` and ``<https://x|label>`` links show as typed; a word joiner
after each ``@`` keeps plain ``@channel``/``@here`` inert on receivers that
parse them (Mattermost's and Rocket.Chat's Slack-compatible webhooks do, and
Slack does with ``link_names``); and the message asks for no mrkdwn (so ``*``
and ``_`` in a label format nothing), no parsing of names and no unfurling (so
Slack fetches no link a label holds).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

TIMEOUT_S: Final = 10.0
#: Slack's three control characters and their escapes (api.slack.com, "Formatting text": escaping).
_SLACK_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SLACK_SPECIAL: Final = re.compile("[&<>]")
_MENTION: Final = re.compile(r"@(?=\w)")
WORD_JOINER: Final = "\u2060"
#: Message fields that turn off every kind of markup Slack would otherwise read in ``text``.
PLAIN: Final[dict[str, Any]] = {"mrkdwn": False, "parse": "none", "link_names": False, "unfurl_links": False,
                                "unfurl_media": False}


def slack_text(text: str) -> str:
    """``text`` as Slack shows it literally: its control characters escaped, ``@`` mentions broken."""
    escaped = _SLACK_SPECIAL.sub(lambda m: _SLACK_ESCAPES[m.group()], text)
    return _MENTION.sub("@" + WORD_JOINER, escaped)


def post_alert(url: str, payload: dict[str, Any], text: str, timeout: float = TIMEOUT_S) -> str | None:
    """POST ``payload`` (JSON-ready) with ``text`` escaped for Slack to ``url``.

    None when the receiver took it (2xx), else what went wrong.
    """
    import httpx

    host = urlsplit(url).hostname or "?"
    body = payload | PLAIN | {"text": slack_text(text)}
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"webhook at {host} unreachable ({type(exc).__name__})"
    if not response.is_success:
        return f"webhook at {host} answered HTTP {response.status_code}"
    return None


def check_url(url: str, where: str = "--webhook") -> str:
    """The URL if it is http(s) with a host; OnlineConfigError otherwise."""
    from .errors import OnlineConfigError

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OnlineConfigError(f"{where}: not an http(s) URL with a host; give e.g. "
                                "https://hooks.slack.com/services/...")
    return url
