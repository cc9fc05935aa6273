"""Ledger URLs: what users may write, what SQLAlchemy is given, what logs show."""

from __future__ import annotations

import re

# psycopg 3 is the PostgreSQL driver judgeq ships; SQLAlchemy's bare
# "postgresql://" would pick psycopg2, which is not installed.
_PG_PREFIXES = ("postgresql://", "postgres://")
PG_DRIVER_PREFIX = "postgresql+psycopg://"
_USERINFO_PASSWORD = re.compile(r"(//[^:/@]*:)[^@]*@")


def normalize_url(url: str) -> str:
    """Return ``url`` with ``postgresql://`` and ``postgres://`` mapped to psycopg 3."""
    url = url.strip()
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return PG_DRIVER_PREFIX + url[len(prefix) :]
    return url


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, fit for messages and logs."""
    from sqlalchemy.engine import make_url  # here: importing errors must stay cheap

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: mask what sits where a password would
        return _USERINFO_PASSWORD.sub(r"\1***@", url)
