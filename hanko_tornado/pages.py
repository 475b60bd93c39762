"""Server-rendered pages: a browser that is not logged in is sent to Tornado's ``login_url``, not answered 401 JSON.

::

    class AccountPage(HankoPageMixin, tornado.web.RequestHandler):
        def get(self) -> None:
            self.render("account.html", user=self.hanko_user)

    app = tornado.web.Application([...], hanko=HankoSettings(...), login_url="/login")

A login page reads its ``next`` argument through :func:`safe_next_url`, which lets only a path of this
site through: never another site (an open redirect).
"""

from __future__ import annotations

import re
import urllib.parse

import tornado.web
from tornado.httputil import url_concat

from hanko_tornado.errors import (
    AuthenticationError,
    HankoError,
    InsufficientUserAuthenticationError,
)
from hanko_tornado.mixin import HankoAuthMixin

__all__ = ["HankoPageMixin", "login_redirect_url", "safe_next_url"]

#: Tornado's ``@authenticated`` redirects these; anything else keeps its answer.
_REDIRECTED_METHODS = frozenset({"GET", "HEAD"})
#: Longer than any path a page of this site needs, short enough for every browser and proxy.
MAX_NEXT_LENGTH = 2048
# RFC 3986's characters (and "|", "^", which browsers leave as they are in a path): no whitespace, no control
# character, no backslash (browsers read "/\\" as "//"), no double quote or angle bracket, nothing beyond ASCII.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%|^]+")


class HankoPageMixin(HankoAuthMixin):
    """:class:`~hanko_tornado.mixin.HankoAuthMixin` for HTML pages: a refusal a new login can fix sends GET and
    HEAD to the ``login_url`` setting (302, ``?next=`` as Tornado's ``@authenticated`` builds it).

    A login fixes: no token, a refused token (expired, signed by a key rotated out, an ended session...), and a
    step-up requirement (``passkey``, ``max_age``: the login URL then also carries ``acr_values`` and
    ``max_age``, RFC 9470's names, for the login page to say what is needed).  The refusal is logged and
    counted as any other.  Everything else answers as the mixin does: unsafe methods (POST...) keep their
    401/403 JSON, as do requirements on who the user is (403: a new login does not change that) and an
    unreachable Hanko (503: the token may be fine).  Without a ``login_url`` (or an overridden
    ``get_login_url``) nothing changes.  It composes with ``@tornado.web.authenticated`` (which sees
    ``current_user``, ``None`` on an optional page's anonymous visit) and with ``xsrf_cookies``.
    """

    def on_hanko_refused(self, error: HankoError) -> None:
        if self.request.method in _REDIRECTED_METHODS and _a_login_fixes(error) and self._has_login_url():
            self.redirect(login_redirect_url(self, error))
        else:
            super().on_hanko_refused(error)

    def _has_login_url(self) -> bool:
        overridden = type(self).get_login_url is not tornado.web.RequestHandler.get_login_url
        return overridden or bool(self.settings.get("login_url"))


def _a_login_fixes(error: HankoError) -> bool:
    return isinstance(error, (AuthenticationError, InsufficientUserAuthenticationError))


def login_redirect_url(handler: tornado.web.RequestHandler, error: HankoError | None = None) -> str:
    """Where to send ``handler``'s visitor to log in: its ``get_login_url()``, with ``next`` as Tornado adds it.

    As ``@tornado.web.authenticated``: a login URL with a query already is left as it is; otherwise ``next`` is
    the request's path and query (its full URL when the login URL is absolute).  For an
    :class:`~hanko_tornado.errors.InsufficientUserAuthenticationError`, ``acr_values`` (the login methods,
    space-separated) and ``max_age`` (seconds) are added.
    """
    url = handler.get_login_url()
    if "?" not in url:
        absolute = bool(urllib.parse.urlsplit(url).scheme)
        next_url = handler.request.full_url() if absolute else handler.request.uri
        url += "?" + urllib.parse.urlencode({"next": next_url})
    if isinstance(error, InsufficientUserAuthenticationError):
        step_up: dict[str, str] = {}
        if error.acr_values:
            step_up["acr_values"] = " ".join(error.acr_values)
        if error.max_age is not None:
            step_up["max_age"] = str(error.max_age)
        url = url_concat(url, step_up)
    return url


def safe_next_url(value: str | None, own_origin: str, default: str = "/") -> str:
    """``value`` as a path of this site to go to after login, or ``default`` when it could lead anywhere else.

    Let through: a path (``/app?tab=1``), and an absolute URL on ``own_origin`` (``https://example.com``, as
    :func:`login_redirect_url` builds for an absolute login URL), made a path.  Refused: another site
    (``https://evil.example``, ``//evil.example``), a backslash anywhere (``/\\evil.example``: browsers read it
    as ``//``), whitespace and control characters (browsers drop tabs and newlines: ``/\\t/evil.example``),
    double quotes, angle brackets, anything not ASCII: any character outside RFC 3986's but ``|`` and ``^``.  And more
    than ``MAX_NEXT_LENGTH`` characters.
    """
    if not value or len(value) > MAX_NEXT_LENGTH or not _URL_CHARACTERS.fullmatch(value):
        return default
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # "http://[" and the like
        return default
    if parts.scheme or parts.netloc:
        if f"{parts.scheme}://{parts.netloc}".lower() != own_origin.lower():
            return default
        value = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if not value.startswith("/") or value.startswith("//"):
        return default
    return value
