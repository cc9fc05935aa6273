"""Who is logged in to Flower, for every request of judgeq's pages and of the budget task's API.

Flower checks basic auth in ``BaseHandler.get_current_user`` (a 401 for
missing or wrong credentials) but then answers ``True``, not the user: the
user is the part of the checked ``Authorization`` header before its first
":". :class:`LoginRequired` answers that name (or, under Flower's OAuth, the
address Flower knows), and refuses every request without one with a 401,
GET and POST alike, before anything else is read.

Flower's own forgery check (``BaseHandler.check_xsrf_cookie``) refuses
cross-site requests by their ``Sec-Fetch-Site`` and ``Origin`` headers but,
under basic auth, never asks for tornado's ``_xsrf`` token. A browser sends
basic credentials on its own, so judgeq's forms ask for the token as well:
a POST without it, or with another session's, is a 403.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Any

import tornado.web
from flower.views import BaseHandler


def basic_user(header: str) -> str | None:
    """The user name of an ``Authorization: Basic ...`` header (already checked by Flower), or None."""
    scheme, _, credentials = header.partition(" ")
    if scheme != "Basic" or not credentials.strip():
        return None
    try:
        user, sep, _ = b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if sep and user else None


class LoginRequired:
    """A mixin before a Flower handler class: ``current_user`` is the logged-in user's name, and required."""

    request: Any

    def get_current_user(self) -> str | None:
        flower_user = super().get_current_user()  # type: ignore[misc]  # Flower's check: 401 on bad credentials
        if isinstance(flower_user, str):  # Flower's OAuth: the user Flower's cookie holds
            return flower_user
        if not flower_user:
            return None
        return basic_user(self.request.headers.get("Authorization", ""))

    def logged_in(self) -> str:
        """The logged-in user; a 401 (Flower asks the browser for credentials) without one."""
        user = self.current_user  # type: ignore[attr-defined]
        if not user:
            raise tornado.web.HTTPError(401)
        return str(user)


class Page(LoginRequired, BaseHandler):  # type: ignore[misc]
    """A page of judgeq's in Flower: Flower's look and login, the logged-in user required for every request,
    and tornado's ``_xsrf`` token required on every POST."""

    def prepare(self) -> None:
        self.logged_in()

    def check_xsrf_cookie(self) -> None:
        self.logged_in()  # tornado checks forgery before prepare(): without a login, a 401 all the same
        super().check_xsrf_cookie()  # Flower's: no cross-site request
        tornado.web.RequestHandler.check_xsrf_cookie(self)  # and the token, which Flower skips under basic auth
