"""Database and broker URLs: what users may write, what SQLAlchemy is given, what logs show.

Masking does not trust a URL parser: a password may sit where parsers do not
look for one. :func:`mask_url` hides

- the password of ``scheme://user:password@host``, up to the *last* ``@``
  (so an unescaped ``@`` or ``/`` in the password is hidden too, where
  SQLAlchemy's and kombu's parsers would split the password into a host and
  a database name);
- the value of every query parameter or ``key=value`` word whose name says
  it holds a secret (libpq's ``?password=``, ``sslpassword``, redis-py's
  ``?password=``, tokens, keys), in a URL or in a libpq keyword string.

:func:`ambiguous_password` finds a URL whose password holds an unescaped
``@`` or ``/``: parsers read part of such a password as the host, and would
connect to it (and print it). Callers refuse such a URL before using it.
:func:`redact_secrets` removes a URL's secrets from any text, such as a
driver's error message.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

# psycopg 3 is the PostgreSQL driver judgeq ships; SQLAlchemy's bare
# "postgresql://" would pick psycopg2, which is not installed.
_PG_PREFIXES = ("postgresql://", "postgres://")
PG_DRIVER_PREFIX = "postgresql+psycopg://"

MASK = "***"
#: A query parameter or keyword whose value is a secret (matched case-insensitively).
_SECRET_WORD = re.compile(
    r"(?P<key>(?:^|(?<=[?&;\s]))[\w.-]*(?:pass|pwd|secret|token|key|cred|auth)[\w.-]*\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^&;\s]*)",
    re.IGNORECASE,
)


def normalize_url(url: str) -> str:
    """Return ``url`` with ``postgresql://`` and ``postgres://`` mapped to psycopg 3.

    Raises LedgerUrlError (message masked) for a password holding an unescaped ``@`` or ``/``.
    """
    url = url.strip()
    if ambiguous_password(url):
        from ledger.errors import LedgerUrlError  # ledger.errors imports this module

        raise LedgerUrlError(unescaped_message(url, "JUDGEQ_LEDGER_URL"))
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return PG_DRIVER_PREFIX + url[len(prefix) :]
    return url


def _split(url: str) -> tuple[str, str | None, str]:
    """``(scheme://, userinfo or None, rest)``.

    The userinfo ends at the last ``@`` before the query; when there is none
    there, at the last ``@`` of the URL (a password holding ``?``).
    """
    head, sep, body = url.partition("://")
    if not sep:
        return "", None, url
    before_query = body.split("?", 1)[0]
    end = before_query.rfind("@")
    if end < 0:
        end = body.rfind("@")
    if end < 0:
        return head + sep, None, body
    return head + sep, body[:end], body[end + 1 :]


def mask_url(url: str) -> str:
    """Return ``url`` with every password or secret parameter replaced by ``***``, fit for messages and logs."""
    scheme, userinfo, rest = _split(url)
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        masked = f"{scheme}{user}:{MASK}@{rest}" if colon else f"{scheme}{userinfo}@{rest}"
    else:
        masked = f"{scheme}{rest}"
    return _SECRET_WORD.sub(lambda m: m.group("key") + MASK, masked)


def secrets_of(url: str) -> list[str]:
    """The secrets a URL holds (its password and secret parameters), as written and decoded."""
    found: list[str] = []
    scheme, userinfo, _rest = _split(url)
    if userinfo is not None and ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    found += [m.group("value").strip("'\"") for m in _SECRET_WORD.finditer(url)]
    variants = {v for s in found if s for v in (s, unquote(s), quote(unquote(s), safe=""))}
    return sorted(variants, key=len, reverse=True)


def redact_secrets(text: str, url: str | None) -> str:
    """``text`` (a driver's error message, say) without any secret of ``url``."""
    if not url:
        return text
    for secret in secrets_of(url):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


def ambiguous_password(url: str) -> bool:
    """Whether the URL's password holds an unescaped ``@`` or ``/``, which parsers would read as the host."""
    _scheme, userinfo, _rest = _split(url)
    if userinfo is None or ":" not in userinfo:
        return False
    password = userinfo.partition(":")[2]
    return "@" in password or "/" in password


def has_query_secret(url: str) -> bool:
    """Whether the URL's query holds a secret parameter (``?password=…``)."""
    query = url.partition("?")[2]
    return bool(query) and _SECRET_WORD.search("?" + query) is not None


def unescaped_message(url: str, setting: str) -> str:
    """What to say about a URL :func:`ambiguous_password` found."""
    return (f"{setting}: the password in {mask_url(url)} holds '@' or '/' that is not percent-encoded, so the "
            "URL's host cannot be told apart from it; write '@' as %40 and '/' as %2F in the password")


def bad_host(url: str) -> None:
    """ValueError when the URL's host part cannot be a host: an unclosed ``[`` (IPv6) or a port that is no number.

    urllib's own checks, on the part after the userinfo (whose password may hold
    anything); SQLAlchemy's parser would take ``[foo`` for a host name and try to
    resolve it, or fail with a bare ValueError on ``[::1``.
    """
    scheme, _userinfo, rest = _split(url)
    if not scheme:
        return
    parts = urlsplit(f"{scheme}{rest}")  # raises ValueError("Invalid IPv6 URL") for an unclosed "["
    if "[" in parts.netloc or "]" in parts.netloc:
        _ = parts.port  # raises ValueError for a port that is not a number in range
