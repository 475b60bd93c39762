"""``FakeFrontendApi``: the endpoints Hanko's frontend (``hanko-elements``, its SDK) calls, for a :class:`FakeHanko`.

A stand-in, not Hanko: its login flow logs in whoever gives an email, with no passcode or passkey, so that
``<hanko-auth>`` can be driven to a session on loopback.  The shapes are Hanko's flow API's (``flowpilot``'s
``Response``: ``name``, ``status``, ``payload``, ``csrf_token``, ``actions``, ``links``): ``POST /login``
answers ``preflight``, ``register_client_capabilities`` leads to ``login_init`` (an email input),
``continue_with_login_identifier`` to ``success`` with the token in ``X-Auth-Token`` (Hanko's
``session.enable_auth_token_header``).  ``POST /logout`` ends the session of the token it is sent, 204.
Mount it on the origin of the pages (as ``server.py --dev`` does): it sends no CORS headers.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import urllib.parse
import uuid
from typing import Any

import jwt
import tornado.web
from tornado.routing import URLSpec

from hanko_tornado.testing.fake import FakeHanko

__all__ = ["FakeFrontendApi"]

# Hanko's EmailInput: 3 to 100 characters by default; the elements check the form, the stand-in checks again.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,96}")


class FakeFrontendApi:
    """The login flow and logout of a Hanko tenant, in front of ``hanko``'s keys and sessions.

    :param lifetime: seconds the sessions it opens last (Hanko's ``session.lifespan``, 12 hours by default).
    :param amr: the login methods the tokens it issues name.
    """

    def __init__(self, hanko: FakeHanko, *, lifetime: int = 12 * 3600, amr: tuple[str, ...] = ("passkey",)) -> None:
        self.hanko = hanko
        self.lifetime = lifetime
        self.amr = amr
        #: Flows begun and not finished, by id: their CSRF token.
        self.flows: dict[str, str] = {}
        #: Emails logged in so far, and sessions ended by ``/logout``.
        self.logins: list[str] = []
        self.logouts: list[str] = []

    def routes(self, prefix: str = "") -> list[URLSpec]:
        """The routes under ``prefix`` (the Hanko API URL's path)."""
        return [
            tornado.web.url(rf"{prefix}/login", LoginFlowHandler, {"api": self}),
            tornado.web.url(rf"{prefix}/logout", LogoutHandler, {"api": self}),
        ]

    def user_id(self, email: str) -> str:
        """The same user id for the same email, as Hanko's database keeps it."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + email))


class _Handler(tornado.web.RequestHandler):
    def initialize(self, api: FakeFrontendApi) -> None:
        self.api = api

    def check_xsrf_cookie(self) -> None:
        """Hanko's API is not the application's: its own ``xsrf_cookies`` setting does not apply."""


class LoginFlowHandler(_Handler):
    """``POST /login``: Hanko's login flow (email, then success) as its frontend API answers."""

    def post(self) -> None:
        action = self.get_query_argument("action", "")
        name, _, flow_id = action.partition("@")
        if not action:
            flow_id = str(uuid.uuid4())
            self.api.flows[flow_id] = secrets.token_urlsafe(16)
            self.state("preflight", flow_id, {"register_client_capabilities": {}})
            return
        if flow_id not in self.api.flows:
            self.error_state("error", 404, "flow_not_found_error", "The flow does not exist.")
            return
        if name == "register_client_capabilities":
            self.login_init(flow_id)
        elif name == "continue_with_login_identifier":
            email = self.input_data().get("email")
            if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip().lower()):
                self.login_init(flow_id, error={"code": "form_data_invalid_error", "message": "Form data invalid."})
                return
            self.success(flow_id, email.strip().lower())
        else:
            self.error_state("login_init", 400, "invalid_action_error", "Action is invalid.")

    def input_data(self) -> dict[str, Any]:
        """The flow action's ``input_data`` object (``{}`` when there is none)."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return {}
        data = body.get("input_data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    def login_init(self, flow_id: str, error: dict[str, str] | None = None) -> None:
        """Answer the ``login_init`` state: asks for an email."""
        email = {"name": "email", "type": "email", "required": True, "min_length": 3, "max_length": 100}
        self.state("login_init", flow_id, {"continue_with_login_identifier": {"email": email}}, error=error)

    def success(self, flow_id: str, email: str) -> None:
        """Log ``email`` in: mint its session token, send it as Hanko does (``X-Auth-Token``)."""
        del self.api.flows[flow_id]
        token = self.api.hanko.mint(self.api.user_id(email), email=email, lifetime=self.api.lifetime, amr=self.api.amr)
        claims = jwt.decode(token, options={"verify_signature": False})
        self.api.logins.append(email)
        self.set_header("X-Auth-Token", token)
        self.set_header("X-Session-Lifetime", str(self.api.lifetime))
        self.set_header("X-Session-Retention", "persistent")
        payload = {
            "claims": {
                "subject": claims["sub"],
                "session_id": claims["session_id"],
                "issued_at": _rfc3339(claims["iat"]),
                "expiration": _rfc3339(claims["exp"]),
                "audience": claims["aud"],
                "email": claims.get("email"),
            }
        }
        self.state("success", "", {}, payload=payload)

    def state(
        self,
        name: str,
        flow_id: str,
        actions: dict[str, dict[str, Any]],
        *,
        payload: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        """Answer a flow state with its actions, as Hanko's flow API writes them."""
        self.set_status(400 if error else 200)
        body: dict[str, Any] = {
            "name": name,
            "status": 400 if error else 200,
            "payload": payload or {},
            "csrf_token": self.api.flows.get(flow_id, ""),
            "actions": {
                action: {
                    "action": action,
                    "href": "/login?" + urllib.parse.urlencode({"action": f"{action}@{flow_id}"}),
                    "inputs": inputs,
                    "description": "",
                }
                for action, inputs in actions.items()
            },
            "links": [],
        }
        if error:
            body["error"] = error
        self.finish(body)

    def error_state(self, name: str, status: int, code: str, message: str) -> None:
        """Answer a flow error with ``status``."""
        self.set_status(status)
        self.finish({"name": name, "status": status, "actions": {}, "error": {"code": code, "message": message}})


class LogoutHandler(_Handler):
    """``POST /logout``: the session of the token sent ended, as Hanko's logout does."""

    def post(self) -> None:
        # Hanko reads the session token as every authenticated endpoint does: the bearer header, else the cookie.
        authorization = self.request.headers.get("Authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        token = token or self.get_cookie(self.api.hanko.cookie_name)
        claims = self.api.hanko._verified_claims(token) if token else None
        if claims is None:
            self.set_status(401)
            self.finish({"code": 401, "message": "Unauthorized"})
            return
        session_id = claims.get("session_id")
        if isinstance(session_id, str):
            self.api.hanko.revoke(session_id)
            self.api.logouts.append(session_id)
        self.clear_cookie(self.api.hanko.cookie_name)
        self.set_status(204)
        self.finish()


def _rfc3339(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
