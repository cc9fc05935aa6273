"""Posting a drift alert to a webhook: JSON with a ``text`` field, which a Slack incoming webhook accepts as is.

The body is the check's JSON (``DriftReport.to_json``) plus ``text``, the
alert in words; Slack reads ``text`` and ignores the rest, other receivers
get every figure. One attempt with a timeout: an alert is also printed and
recorded, so a webhook that is down costs a message, never the check. The
URL is never logged (a Slack webhook URL is a credential): errors name its
host only.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

TIMEOUT_S: Final = 10.0


def post_alert(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_S) -> str | None:
    """POST ``payload`` (JSON-ready) to ``url``; None when the receiver took it (2xx), else what went wrong."""
    import httpx

    host = urlsplit(url).hostname or "?"
    try:
        response = httpx.post(url, json=payload, timeout=timeout)
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
