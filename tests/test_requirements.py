"""Requirements: the vocabulary, both answers with their exact headers, per-method declarations, remembered tokens."""

from __future__ import annotations

import dataclasses
import json
import time
import unittest
import unittest.mock
from typing import Any, ClassVar

import tornado.web
import tornado.websocket
from support import captured_logs
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.testing import gen_test

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoUser, requirement_core, verifier_for
from hanko_tornado.errors import InsufficientScopeError, InsufficientUserAuthenticationError
from hanko_tornado.requirements import (
    Requirement,
    all_of,
    amr,
    any_of,
    claim_contains,
    claim_equals,
    claim_in,
    email_verified,
    max_age,
    passkey,
    requirement_for,
    requires,
    user_passes,
)
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.websocket import HankoWebSocketMixin

STEP_UP_HEADER = (
    'Bearer realm="hanko", error="insufficient_user_authentication", error_description="A different '
    'authentication level and more recent authentication are required", acr_values="passkey", max_age="600"'
)
METHOD_HEADER = (
    'Bearer realm="hanko", error="insufficient_user_authentication", '
    'error_description="A different authentication level is required", acr_values="passkey"'
)
AGE_HEADER = (
    'Bearer realm="hanko", error="insufficient_user_authentication", '
    'error_description="More recent authentication is required", max_age="600"'
)
SCOPE_HEADER = 'Bearer realm="hanko", error="insufficient_scope"'


class RequirementHandler(HankoAuthMixin, CorsHandler):
    """Requires what the route says."""

    def initialize(self, requirement: Requirement | None = None) -> None:
        if requirement is not None:
            self.hanko_requires = requirement

    def get(self) -> None:
        self.write({"user_id": self.current_user.id if self.current_user else None})

    def post(self) -> None:
        self.get()


class AccountHandler(HankoAuthMixin, CorsHandler):
    hanko_requires = email_verified

    def get(self) -> None:
        self.write({"done": "get"})

    @requires(passkey & max_age(300))
    def delete(self) -> None:
        self.write({"done": "delete"})

    @requires(claim_contains("scope", "account:write"))  # replaces the class's: an unverified email will do
    async def put(self) -> None:
        self.write({"done": "put"})

    @requires()  # only a session
    def patch(self) -> None:
        self.write({"done": "patch"})

    @tornado.web.authenticated
    @requires(claim_equals("role", "admin"), email_verified)
    def post(self) -> None:
        self.write({"done": "post"})


class OptionalAdminHandler(RequirementHandler):
    hanko_optional = True
    hanko_requires = claim_equals("role", "admin")


class PasskeySocket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_requires = passkey

    def open(self) -> None:
        self.write_message(self.hanko_user.id)


class MisdeclaredHandler(RequirementHandler):
    hanko_requires = "admin"  # type: ignore[assignment]


ROUTES: dict[str, Requirement | None] = {
    "none": None,
    "passkey": passkey,
    "recent": max_age(600),
    "two-seconds": max_age(2),
    "step-up": passkey & max_age(600),
    "email": email_verified,
    "admin": claim_in("role", "admin", "owner"),
    "scope": claim_contains("scope", "orders:write"),
    "tier": claim_equals(("org", "tier"), "gold"),
    "ada": user_passes(lambda user: user.username == "ada", "the user ada"),
    "admin-or-step-up": any_of(claim_equals("role", "admin"), passkey & max_age(600)),
    "all": all_of(email_verified, passkey, max_age(600)),
    "broken": user_passes(lambda user: None, "a broken check"),  # type: ignore[arg-type,return-value]
}


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


class RequirementTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}

    def get_app(self) -> tornado.web.Application:
        routes: list[Any] = [(rf"/r/{name}", RequirementHandler, {"requirement": r}) for name, r in ROUTES.items()]
        return tornado.web.Application(
            [
                *routes,
                (r"/account", AccountHandler),
                (r"/optional-admin", OptionalAdminHandler),
                (r"/misdeclared", MisdeclaredHandler),
                (r"/socket", PasskeySocket),
            ],
            hanko=self.hanko.settings(**self.settings_overrides),
            cors=CorsSettings(origins=["http://localhost:3000"]),
        )

    def get(self, path: str, token: str, **kwargs: Any) -> HTTPResponse:
        return self.fetch_with_token(path, token, raise_error=False, **kwargs)

    def assert_passes(self, path: str, token: str, **kwargs: Any) -> None:
        response = self.get(path, token, **kwargs)
        self.assertEqual(response.code, 200, response.body)

    def assert_step_up(self, path: str, token: str, header: str, expected: dict[str, Any]) -> None:
        response = self.get(path, token)
        self.assertEqual(response.code, 401, response.body)
        self.assertEqual(response.headers["WWW-Authenticate"], header)
        self.assertEqual(body(response), {"error": "insufficient_user_authentication", **expected})

    def assert_forbidden(self, path: str, token: str, requirement: str, **kwargs: Any) -> None:
        response = self.get(path, token, **kwargs)
        self.assertEqual(response.code, 403, response.body)
        self.assertEqual(response.headers["WWW-Authenticate"], SCOPE_HEADER)
        self.assertEqual(
            body(response),
            {
                "error": "insufficient_scope",
                "message": f"Requirement not met: {requirement}.",
                "requirement": requirement,
            },
        )
        self.assertNotIn(token.split(".")[1], response.body.decode())


class LoginRequirementTest(RequirementTestCase):
    def test_a_passkey_login_of_the_last_ten_minutes(self) -> None:
        self.assert_passes("/r/step-up", self.hanko.mint())
        self.assert_passes("/r/step-up", self.hanko.mint(amr=("pwd", "passkey")))

    def test_another_method_and_an_old_login_ask_for_both(self) -> None:
        old_password_login = self.hanko.mint(amr=("pwd",), claims={"iat": int(time.time()) - 3600})
        self.assert_step_up(
            "/r/step-up",
            old_password_login,
            STEP_UP_HEADER,
            {
                "message": "A new login is needed: a login with passkey and a login within the last 600 seconds.",
                "requirement": "a login with passkey and a login within the last 600 seconds",
                "acr_values": "passkey",
                "max_age": 600,
            },
        )

    def test_another_method_asks_for_the_method_only(self) -> None:
        expected = {
            "message": "A new login is needed: a login with passkey.",
            "requirement": "a login with passkey",
            "acr_values": "passkey",
        }
        for methods in [("pwd",), ("otp",), ("ext:google",), ()]:
            with self.subTest(amr=methods):
                self.assert_step_up("/r/step-up", self.hanko.mint(amr=methods), METHOD_HEADER, expected)
        # Tokens made by Hanko's admin API carry no amr at all.
        self.assert_step_up("/r/passkey", self.hanko.mint(claims={"amr": None}), METHOD_HEADER, expected)
        self.assert_step_up("/r/passkey", self.hanko.mint(claims={"amr": "passkey"}), METHOD_HEADER, expected)

    def test_an_old_login_asks_for_a_recent_one(self) -> None:
        expected = {
            "message": "A new login is needed: a login within the last 600 seconds.",
            "requirement": "a login within the last 600 seconds",
            "max_age": 600,
        }
        now = int(time.time())
        self.assert_step_up("/r/step-up", self.hanko.mint(claims={"iat": now - 3600}), AGE_HEADER, expected)
        self.assert_step_up("/r/recent", self.hanko.mint(claims={"iat": now - 640}), AGE_HEADER, expected)
        self.assert_step_up("/r/recent", self.hanko.mint(claims={"iat": None}), AGE_HEADER, expected)

    def test_the_settings_leeway_allows_for_clock_skew(self) -> None:
        now = int(time.time())
        self.assert_passes("/r/recent", self.hanko.mint(claims={"iat": now - 620}))  # leeway 30 by default
        self.assert_passes("/r/recent", self.hanko.mint(claims={"iat": now + 20}))  # Hanko's clock a little ahead

    def test_the_answer_can_be_read_by_the_allowed_origin(self) -> None:
        token = self.hanko.mint(amr=("pwd",))
        response = self.get("/r/passkey", token, headers={"Origin": "http://localhost:3000"})
        self.assertEqual(response.code, 401)
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], "http://localhost:3000")
        self.assertIn("WWW-Authenticate", response.headers["Access-Control-Expose-Headers"])


class UserRequirementTest(RequirementTestCase):
    def test_verified_email(self) -> None:
        self.assert_passes("/r/email", self.hanko.mint())
        self.assert_forbidden("/r/email", self.hanko.mint(email_verified=False), "a verified email address")
        self.assert_forbidden("/r/email", self.hanko.mint(email=None), "a verified email address")

    def test_claim_is_one_of(self) -> None:
        requirement = 'claims["role"] is one of "admin", "owner"'
        self.assert_passes("/r/admin", self.hanko.mint(claims={"role": "owner"}))
        for role in ["reader", "Admin", ["admin"], None, True]:
            with self.subTest(role=role):
                self.assert_forbidden("/r/admin", self.hanko.mint(claims={"role": role}), requirement)

    def test_claim_contains(self) -> None:
        requirement = 'claims["scope"] contains "orders:write"'
        self.assert_passes("/r/scope", self.hanko.mint(claims={"scope": ["orders:read", "orders:write"]}))
        self.assert_passes("/r/scope", self.hanko.mint(claims={"scope": "orders:read orders:write"}))
        for scope in ["orders:write-all", ["orders:read"], {"orders:write": True}, None]:
            with self.subTest(scope=scope):
                self.assert_forbidden("/r/scope", self.hanko.mint(claims={"scope": scope}), requirement)

    def test_nested_claim_equals(self) -> None:
        self.assert_passes("/r/tier", self.hanko.mint(claims={"org": {"tier": "gold", "id": 7}}))
        for org in [{"tier": "silver"}, "gold", {"tiers": ["gold"]}, None]:
            with self.subTest(org=org):
                token = self.hanko.mint(claims={"org": org})
                self.assert_forbidden("/r/tier", token, 'claims["org"]["tier"] equals "gold"')

    def test_a_function_of_the_user(self) -> None:
        self.assert_passes("/r/ada", self.hanko.mint(username="ada"))
        self.assert_forbidden("/r/ada", self.hanko.mint(username="mallory"), "the user ada")

    def test_a_function_that_returns_no_bool_is_a_server_error(self) -> None:
        with captured_logs() as lines:
            self.assertEqual(self.get("/r/broken", self.hanko.mint()).code, 500)
        self.assertTrue(any("returned a NoneType, not a bool" in line for line in lines), lines)

    def test_a_misdeclared_handler_is_a_server_error(self) -> None:
        with captured_logs() as lines:
            self.assertEqual(self.get("/misdeclared", self.hanko.mint()).code, 500)
        self.assertTrue(any("hanko_requires must be a Requirement" in line for line in lines), lines)


class CombinationTest(RequirementTestCase):
    def test_all_of_who_the_user_is_comes_first(self) -> None:
        # A new login would not verify the email: 403, whatever else is missing.
        token = self.hanko.mint(email_verified=False, amr=("pwd",), claims={"iat": int(time.time()) - 3600})
        self.assert_forbidden("/r/all", token, "a verified email address")
        self.assert_step_up(
            "/r/all",
            self.hanko.mint(amr=("pwd",), claims={"iat": int(time.time()) - 3600}),
            STEP_UP_HEADER,
            {
                "message": "A new login is needed: a login with passkey and a login within the last 600 seconds.",
                "requirement": "a login with passkey and a login within the last 600 seconds",
                "acr_values": "passkey",
                "max_age": 600,
            },
        )
        self.assert_passes("/r/all", self.hanko.mint())

    def test_any_of_asks_for_the_alternative_a_new_login_can_meet(self) -> None:
        self.assert_passes("/r/admin-or-step-up", self.hanko.mint(amr=("pwd",), claims={"role": "admin"}))
        self.assert_passes("/r/admin-or-step-up", self.hanko.mint(claims={"role": "reader"}))
        old_password_login = self.hanko.mint(amr=("pwd",), claims={"iat": int(time.time()) - 3600})
        response = self.get("/r/admin-or-step-up", old_password_login)
        self.assertEqual(response.code, 401)
        self.assertEqual(response.headers["WWW-Authenticate"], STEP_UP_HEADER)


class PerMethodTest(RequirementTestCase):
    def test_the_class_requirement_holds_for_undecorated_methods(self) -> None:
        self.assert_passes("/account", self.hanko.mint())
        self.assert_forbidden("/account", self.hanko.mint(email_verified=False), "a verified email address")

    def test_a_method_requirement_replaces_the_class_one(self) -> None:
        old = int(time.time()) - 3600
        delete: dict[str, Any] = {"method": "DELETE"}
        self.assert_passes("/account", self.hanko.mint(email_verified=False), **delete)
        response = self.get("/account", self.hanko.mint(amr=("pwd",), claims={"iat": old}), **delete)
        self.assertEqual((response.code, body(response)["max_age"]), (401, 300))
        self.assertEqual(body(response)["requirement"], "a login with passkey and a login within the last 300 seconds")
        put: dict[str, Any] = {"method": "PUT", "body": "{}"}
        unverified = self.hanko.mint(email_verified=False, claims={"scope": "account:write"})
        self.assertEqual(body(self.get("/account", unverified, **put)), {"done": "put"})
        self.assert_forbidden("/account", self.hanko.mint(), 'claims["scope"] contains "account:write"', **put)
        patch: dict[str, Any] = {"method": "PATCH", "body": "{}"}
        self.assertEqual(body(self.get("/account", self.hanko.mint(email_verified=False), **patch)), {"done": "patch"})

    def test_beside_tornados_authenticated(self) -> None:
        post: dict[str, Any] = {"method": "POST", "body": "{}"}
        self.assertEqual(
            body(self.get("/account", self.hanko.mint(claims={"role": "admin"}), **post)), {"done": "post"}
        )
        self.assert_forbidden(
            "/account", self.hanko.mint(claims={"role": "reader"}), 'claims["role"] equals "admin"', **post
        )

    def test_options_is_never_checked(self) -> None:
        headers = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "DELETE"}
        response = self.fetch("/account", method="OPTIONS", headers=headers)
        self.assertEqual(response.code, 204)
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], "http://localhost:3000")


class WebSocketTest(RequirementTestCase):
    @gen_test
    async def test_the_handshake_is_checked(self) -> None:
        url = f"ws://127.0.0.1:{self.get_http_port()}/socket"
        user = "aaaaaaaa-0000-4000-8000-000000000019"
        bearer = {"Authorization": f"Bearer {self.hanko.mint(user)}"}
        connection = await tornado.websocket.websocket_connect(HTTPRequest(url, headers=bearer))
        self.assertEqual(await connection.read_message(), user)
        connection.close()
        password_login = {"Authorization": f"Bearer {self.hanko.mint(amr=('pwd',))}"}
        with self.assertRaises(HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(HTTPRequest(url, headers=password_login))
        self.assertEqual(refused.exception.code, 401)


class RememberedTokenTest(RequirementTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"leeway": 0}

    def test_a_remembered_token_is_checked_against_a_stricter_handler(self) -> None:
        token = self.hanko.mint(amr=("pwd",), claims={"role": "reader"})
        self.assert_passes("/r/none", token)
        hits = verifier_for(self._app).cache_info().hits
        self.assert_forbidden("/r/admin", token, 'claims["role"] is one of "admin", "owner"')
        response = self.get("/r/passkey", token)
        self.assertEqual((response.code, response.headers["WWW-Authenticate"]), (401, METHOD_HEADER))
        self.assertEqual(verifier_for(self._app).cache_info().hits, hits + 2, "both answered from the cache")

    def test_a_remembered_login_grows_old(self) -> None:
        issued_at = int(time.time())
        token = self.hanko.mint(claims={"iat": issued_at})
        with unittest.mock.patch.object(requirement_core, "_now", lambda: issued_at + 1.0):  # a second later
            self.assert_passes("/r/two-seconds", token)
        with unittest.mock.patch.object(requirement_core, "_now", lambda: issued_at + 2.5):  # past max_age (leeway 0)
            response = self.get("/r/two-seconds", token)
        self.assertEqual(response.code, 401)
        self.assertEqual(body(response)["max_age"], 2)
        self.assertEqual(verifier_for(self._app).cache_info().hits, 1)


class OrderTest(RequirementTestCase):
    def test_optional_handlers_check_hanko_users_only(self) -> None:
        self.assertEqual(body(self.fetch("/optional-admin")), {"user_id": None})
        self.assert_forbidden("/optional-admin", self.hanko.mint(), 'claims["role"] equals "admin"')
        self.assert_passes("/optional-admin", self.hanko.mint(claims={"role": "admin"}))

    def test_authentication_and_the_cookie_origin_check_come_first(self) -> None:
        self.assertEqual(body(self.get("/r/admin", self.hanko.mint(lifetime=-3600)))["error"], "invalid_token")
        response = self.get(
            "/r/admin",
            self.hanko.mint(),
            cookie=True,
            method="POST",
            body="{}",
            headers={"Origin": "https://evil.example"},
        )
        self.assertEqual((response.code, body(response)["error"]), (403, "cross_origin_request"))

    def test_refusals_are_logged_without_the_token(self) -> None:
        tokens = [self.hanko.mint(claims={"role": "reader"}), self.hanko.mint(amr=("pwd",))]
        with captured_logs() as lines:
            self.get("/r/admin", tokens[0])
            self.get("/r/passkey", tokens[1], cookie=True)
        self.assertTrue(
            any('INFO refused GET /r/admin to 127.0.0.1: needs claims["role"]' in line for line in lines), lines
        )
        self.assertTrue(
            any("refused GET /r/passkey to 127.0.0.1: needs a login with passkey" in line for line in lines)
        )
        for token in tokens:
            for part in token.split("."):
                self.assertFalse(any(part in line for line in lines), f"token part logged: {part[:8]}")


def user(**claims: Any) -> HankoUser:
    now = int(time.time())
    return HankoUser.from_claims({"sub": "u", "iat": now, "exp": now + 60, "amr": ["passkey"], **claims})


class VocabularyTest(unittest.TestCase):
    """The requirements as values: composition, evaluation and declaration errors."""

    def unmet(self, requirement: Requirement, **claims: Any) -> Any:
        try:
            requirement.enforce(user(**claims), leeway=30)
        except (InsufficientScopeError, InsufficientUserAuthenticationError) as error:
            return error
        return None

    def test_json_equality(self) -> None:
        self.assertIsNone(self.unmet(claim_equals("level", 1), level=1.0))
        self.assertIsNotNone(self.unmet(claim_equals("level", 1), level=True))
        self.assertIsNotNone(self.unmet(claim_equals("admin", True), admin=1))
        self.assertIsNotNone(self.unmet(claim_equals("level", 1), level="1"))
        self.assertIsNone(self.unmet(claim_equals("deleted", None), deleted=None))
        self.assertIsNotNone(self.unmet(claim_equals("deleted", None)))
        self.assertIsNone(self.unmet(claim_contains("groups", 7), groups=[1, 7]))
        self.assertIsNotNone(self.unmet(claim_contains("groups", True), groups=[1]))

    def test_operators_compose_and_flatten(self) -> None:
        admin, verified = claim_equals("role", "admin"), email_verified
        self.assertEqual(passkey & max_age(60) & admin, all_of(passkey, max_age(60), admin))
        self.assertEqual((passkey | admin) | verified, any_of(passkey, admin, verified))
        self.assertEqual(all_of(passkey), passkey)
        self.assertEqual(
            str(all_of(admin, any_of(passkey, amr("security_key", "otp")))),
            'claims["role"] equals "admin" and (a login with passkey or (a login with security_key or otp))',
        )

        def is_ada(user: HankoUser) -> bool:
            return user.username == "ada"

        self.assertIsNone(self.unmet(is_ada | admin, role="admin"))
        self.assertEqual(self.unmet(admin & is_ada, role="admin").requirement, "is_ada")

    def test_requirements_are_immutable_and_hashable(self) -> None:
        requirement = passkey & max_age(60)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            requirement.requirements = ()  # type: ignore[attr-defined]
        self.assertEqual(len({requirement, passkey & max_age(60), passkey}), 2)

    def test_all_of_merges_what_one_new_login_must_bring(self) -> None:
        old = int(time.time()) - 3600
        error = self.unmet(amr("passkey", "security_key") & amr("security_key") & max_age(600) & max_age(60), iat=old)
        self.assertEqual((error.acr_values, error.max_age), (("security_key",), 60))
        mfa = self.unmet(amr("pwd") & amr("otp"), amr=["sms"])
        self.assertEqual(mfa.acr_values, ("pwd", "otp"))

    def test_any_of_offers_alternatives_that_differ_in_method(self) -> None:
        error = self.unmet(passkey | amr("security_key") | claim_equals("role", "admin"), amr=["pwd"])
        self.assertIsInstance(error, InsufficientUserAuthenticationError)
        self.assertEqual(error.acr_values, ("passkey", "security_key"))
        self.assertEqual(error.requirement, "a login with passkey or a login with security_key")
        first = self.unmet((passkey & max_age(60)) | amr("otp"), amr=["pwd"], iat=int(time.time()) - 3600)
        self.assertEqual((first.acr_values, first.max_age), (("passkey",), 60))
        forbidden = self.unmet(claim_equals("role", "admin") | email_verified, email={"is_verified": False})
        self.assertIsInstance(forbidden, InsufficientScopeError)
        self.assertEqual(forbidden.requirement, 'claims["role"] equals "admin" or a verified email address')

    def test_max_age_reads_iat_with_the_leeway(self) -> None:
        now = 1_000_000.0
        young, old = user(iat=int(now) - 600), user(iat=int(now) - 601)
        max_age(600).enforce(young, now=now)
        with self.assertRaises(InsufficientUserAuthenticationError):
            max_age(600).enforce(old, now=now)
        max_age(600).enforce(old, now=now, leeway=1)
        with self.assertRaises(InsufficientUserAuthenticationError):
            max_age(600).enforce(user(iat=True), now=now)

    def test_declaration_errors(self) -> None:
        for make in [
            lambda: amr(),
            lambda: amr("pass key"),
            lambda: amr('passkey"'),
            lambda: max_age(-1),
            lambda: max_age(1.5),  # type: ignore[arg-type]
            lambda: claim_in("role"),
            lambda: claim_equals("", "x"),
            lambda: claim_equals((), "x"),
            lambda: claim_equals("nan", float("nan")),
            lambda: all_of(),
            lambda: any_of(),
        ]:
            with self.subTest(make=make), self.assertRaises(ValueError):
                make()
        for make in [
            lambda: claim_equals("roles", ["admin"]),
            lambda: claim_contains("org", {"id": 1}),
            lambda: user_passes("admin"),  # type: ignore[arg-type]
        ]:
            with self.subTest(make=make), self.assertRaises(TypeError):
                make()

        async def is_admin(user: HankoUser) -> bool:
            return True

        with self.assertRaises(TypeError):
            user_passes(is_admin)  # type: ignore[arg-type]

    def test_requirement_for_a_method(self) -> None:
        account = AccountHandler.__new__(AccountHandler)
        self.assertEqual(requirement_for(account, "GET"), email_verified)
        self.assertEqual(requirement_for(account, "DELETE"), passkey & max_age(300))
        self.assertIsNone(requirement_for(account, "PATCH"))
        self.assertEqual(requirement_for(account, "POST"), claim_equals("role", "admin") & email_verified)
