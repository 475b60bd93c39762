"""``HankoAuthMixin``: authenticate Tornado requests with Hanko session tokens."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from hanko_tornado.candidates import Attempt, count_cookies, first_that_passes
from hanko_tornado.cors import TolerantOriginCheck, cors_settings_of
from hanko_tornado.errors import (
    AuthenticationError,
    CrossOriginRequestError,
    HankoError,
    InvalidTokenError,
    MissingTokenError,
    RequirementError,
)
from hanko_tornado.request_verifier import request_project, request_verifier
from hanko_tornado.requirement_data import data_to_load
from hanko_tornado.requirements import Requirement, requirement_for
from hanko_tornado.session_protocol import SessionStatus
from hanko_tornado.tokens import TokenVerifier
from hanko_tornado.user import HankoUser

__all__ = ["HankoAuthMixin"]

log = logging.getLogger("hanko_tornado")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class HankoAuthMixin(TolerantOriginCheck):
    """Requires a valid Hanko session token before the handler's method runs.

    Put it before ``RequestHandler`` (or ``WebSocketHandler``) in the bases.
    ``prepare`` tries the tokens :meth:`get_hanko_tokens` finds (``Authorization:
    Bearer <token>``, then the session cookie, as Hanko does) until one verifies,
    and sets ``self.current_user`` to its :class:`~hanko_tornado.user.HankoUser`.  A refused request is answered at
    once: 401 or 503 with a JSON body ``{"error": ..., "message": ...}``.
    ``OPTIONS`` requests are never authenticated.

    The application needs ``hanko=HankoSettings(...)`` in its settings::

        class ProfileHandler(HankoAuthMixin, CorsHandler):
            def get(self) -> None:
                self.write({"user_id": self.hanko_user.id})

    Set ``hanko_optional = True`` on a handler to let requests without a token
    in: ``current_user`` is then what the handler's own ``get_current_user``
    says (``None`` unless it, or a mixin, overrides it: an API key, say).  A
    token that is sent and invalid is still refused.
    """

    hanko_optional: bool = False
    #: Ask Hanko whether the session still exists: ``None`` follows the
    #: ``session_check`` setting, ``True``/``False`` decide for this handler.
    hanko_session_check: bool | None = None
    #: What Hanko said of this request's session (its expiry and idle expiry), when the
    #: session check ran and Hanko answered; ``None`` otherwise.
    hanko_session: SessionStatus | None = None
    #: Refuse unsafe requests (anything but GET, HEAD, OPTIONS) authenticated by the session cookie
    #: unless they are same-origin or come from an origin the ``cors`` settings allow (403).
    hanko_cookie_origin_check: bool = True
    #: What the user must meet beyond a session (see :mod:`hanko_tornado.requirements`); a method's
    #: ``@requires(...)`` replaces it for that method.  Checked when there is a Hanko user, never on OPTIONS.
    hanko_requires: Requirement | None = None
    #: Why this request was refused, once it was: the token's refusal code (``"expired"``, see
    #: :data:`~hanko_tornado.errors.TOKEN_REFUSALS`), else the error code (``"missing_token"``); for access
    #: logs (:func:`hanko_tornado.json_logs.log_request_as_json`).
    hanko_refusal_reason: str | None = None
    #: The token that authenticated this request, once one did, and whether the browser sent it by itself.
    _hanko_token_used: tuple[str, bool] | None = None

    def get_hanko_verifier(self) -> TokenVerifier:
        """The verifier for this request; override to supply another.

        The application's (its ``hanko`` setting); with a ``hanko_projects`` setting, the verifier of the
        project :meth:`get_hanko_project` names (404 when there is no such project).
        """
        return request_verifier(self, self.get_hanko_project)

    def get_hanko_project(self) -> str | None:
        """The Hanko project this request's token must come from (with a ``hanko_projects`` setting).

        What the projects' ``select`` says of the request; override to decide here (from
        ``self.path_kwargs``, say).  ``None`` for none: 404.
        """
        return request_project(self)

    def get_hanko_requirement(self) -> Requirement | None:
        """What the user must meet on this request: the method's ``@requires(...)``, else ``hanko_requires``."""
        return requirement_for(self, self.request.method or "")

    def get_hanko_tokens(self, cookie_name: str) -> Iterable[tuple[str, bool]]:
        """The tokens this request carries, in the order they are tried: the one hook that finds tokens.

        By default, as Hanko's own middleware: the ``Authorization: Bearer`` token (any letter case; ``""``
        when the header has none), then the session cookie.  The first that verifies (and, with the session
        check on, whose session lives) authenticates the request.  Override it to add a source, marking each
        token with how it came: a :class:`~hanko_tornado.candidates.HankoToken`, or the plain pair
        ``(token, sent_by_browser)`` it names::

            def get_hanko_tokens(self, cookie_name):
                yield from super().get_hanko_tokens(cookie_name)
                token = self.request.headers.get("X-Session-Token")
                if token:
                    yield HankoToken(token, sent_by_browser=False)  # the client set it on purpose

        Tokens are taken one at a time: from a generator, a later source is only read when the tokens
        before it failed (so duplicate cookies do not matter once a bearer token verified).

        :raises InvalidTokenError: more than one cookie named ``cookie_name`` (when it comes to the cookie).
        """
        # Plain pairs, and a tuple for the common cases (no generator to run): this is every request's path.
        bearer = self.get_hanko_bearer_token()
        if bearer is None:
            cookie = self.get_hanko_cookie_token(cookie_name)
            return () if cookie is None else ((cookie, True),)
        if "Cookie" not in self.request.headers:
            return ((bearer, False),)
        return self._bearer_then_cookie(bearer, cookie_name)

    def _bearer_then_cookie(self, bearer: str, cookie_name: str) -> Iterator[tuple[str, bool]]:
        yield bearer, False
        cookie = self.get_hanko_cookie_token(cookie_name)  # read only once the bearer token failed
        if cookie is not None:
            yield cookie, True

    def get_hanko_bearer_token(self) -> str | None:
        """The token a client sent itself (``Authorization: Bearer``), which a cross-site page cannot forge."""
        authorization = self.request.headers.get("Authorization")
        if authorization is not None:
            scheme_and_credentials = authorization.split(None, 1)  # any whitespace after the scheme
            if scheme_and_credentials and scheme_and_credentials[0].lower() == "bearer":
                return scheme_and_credentials[1].strip() if len(scheme_and_credentials) > 1 else ""
        return None

    def get_hanko_cookie_token(self, cookie_name: str) -> str | None:
        """The token in the session cookie, which the browser adds by itself (so cross-site too).

        :raises InvalidTokenError: more than one cookie named ``cookie_name``.
        """
        cookies = self.request.headers.get("Cookie")
        if cookies is None:
            return None
        # Whoever can set a cookie on a parent domain can add a second one, and Tornado keeps the last:
        # the victim would be logged in as the attacker.  The substring count spares the parsing almost always.
        if cookies.count(cookie_name) > 1 and count_cookies(self.request.headers.get_list("Cookie"), cookie_name) > 1:
            raise InvalidTokenError("duplicate_cookie")
        return self.get_cookie(cookie_name) or None

    @property
    def hanko_user(self) -> HankoUser:
        """The authenticated user.

        :raises RuntimeError: on a request with no user (an optional-auth handler's anonymous request, or OPTIONS).
        """
        user = self.current_user
        if not isinstance(user, HankoUser):
            raise RuntimeError("no authenticated Hanko user on this request")
        return user

    async def prepare(self) -> None:
        if self.request.method != "OPTIONS":
            verifier = self.get_hanko_verifier()
            try:
                tokens = iter(self.get_hanko_tokens(verifier.settings.cookie_name))
                token = next(tokens, None)
                if token is None:
                    user = self._anonymous_user()
                else:
                    # A token verified before is answered without awaiting anything: the hot path.
                    try:
                        user = verifier.remembered_user(token[0]) if token[0] else None
                    except InvalidTokenError as ended:  # its session ended: the next token may still do
                        token, user = await first_that_passes(self._attempt(verifier), token, tokens, refused=ended)
                    else:
                        if user is None or self._checks_sessions(verifier):
                            attempt = self._attempt(verifier)
                            token, user = await first_that_passes(attempt, token, tokens, remembered=user)
                    self._hanko_token_used = token
                    if token[1] and self.request.method not in _SAFE_METHODS:  # sent by the browser by itself
                        self._check_cookie_origin()
                self.current_user = user
                # A requirement that needs data from elsewhere (roles from the admin API) fetches it first.
                loading = isinstance(user, HankoUser) and data_to_load(self.get_hanko_requirement(), user, self)
                if loading:
                    await loading
                self._check_hanko_requirements(verifier, user)
            except HankoError as error:
                verifier.metrics.refused(error)
                self._refuse(error)
                return
            if isinstance(self.current_user, HankoUser):
                verifier.metrics.accepted()
                # One user's answer must not be served to another by a shared cache; a handler may say otherwise.
                self.set_header("Cache-Control", "private")
            else:
                verifier.metrics.let_in_anonymously()
        result: Any = super().prepare()
        if result is not None:
            await result

    def _anonymous_user(self) -> Any:
        if self.hanko_optional:
            # No Hanko token: the handler's own get_current_user (or its mixins') decides.
            return self.get_current_user()
        raise MissingTokenError()

    def _attempt(self, verifier: TokenVerifier) -> Attempt:
        """How one token is tried: verified (unless remembered), then its session checked where that is on."""

        async def attempt(token: str, user: HankoUser | None) -> HankoUser:
            authenticated = await verifier.authenticate(token, session_check=self._checks_sessions(verifier), user=user)
            self.hanko_session = authenticated.session
            return authenticated.user

        return attempt

    def _check_cookie_origin(self) -> None:
        """Refuse an unsafe request authenticated by the cookie unless it is same-origin or from an allowed origin.

        The browser adds the cookie to a cross-site form POST by itself (``SameSite=None``, or ``Lax`` from
        another origin of the same site): only where the request comes from tells it apart.
        """
        if not self.hanko_cookie_origin_check:
            return
        site = self.request.headers.get("Sec-Fetch-Site")
        if site in ("same-origin", "none"):
            return
        origin = self.request.headers.get("Origin")
        if origin is not None:
            if site is None and self._origin_matches_host(origin):
                return  # a browser without Sec-Fetch-Site, on the API's own origin
            if cors_settings_of(self).is_trusted_origin(origin):  # listed by name: "*" trusts nobody
                return
        log.info("refused a cookie-authenticated %s from origin %r", self.request.method, origin)
        raise CrossOriginRequestError()

    def _check_hanko_requirements(self, verifier: TokenVerifier, user: Any) -> None:
        """Refuse a Hanko user who does not meet this request's requirement (remembered tokens too)."""
        requirement = self.get_hanko_requirement() if isinstance(user, HankoUser) else None
        if requirement is not None:
            try:
                requirement.enforce(user, leeway=verifier.settings.leeway)
            except RequirementError as error:
                log.info(
                    "refused %s %s to %s: needs %s",
                    self.request.method,
                    self.request.path,
                    self.request.remote_ip,
                    error.requirement,
                )
                raise

    def _checks_sessions(self, verifier: TokenVerifier) -> bool:
        if self.hanko_session_check is None:
            return verifier.settings.session_check != "off"
        return self.hanko_session_check

    def _refuse(self, error: HankoError) -> None:
        self.hanko_refusal_reason = error.code if isinstance(error, InvalidTokenError) else error.error
        if isinstance(error, InvalidTokenError):
            log.info("refused a session token from %s: %s (%s)", self.request.remote_ip, error.reason, error.code)
        elif isinstance(error, AuthenticationError):
            log.debug("no session token from %s for %s", self.request.remote_ip, self.request.path)
        self.on_hanko_refused(error)

    def on_hanko_refused(self, error: HankoError) -> None:
        """Answer a refused request (already logged and counted): ``error``'s status and JSON body.

        Override to answer otherwise; :class:`~hanko_tornado.pages.HankoPageMixin` sends a browser to log in.
        """
        error.answer(self)
