"""HankoAuthMixin: token lookup, every refusal, the answers and the logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

import jwt
import tornado.web
import tornado.websocket
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from support import captured_logs
from tornado.httpclient import HTTPClientError
from tornado.httputil import HTTPHeaders
from tornado.testing import gen_test

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoUser
from hanko_tornado.testing import HankoTestCase, SigningKey


class UserHandler(HankoAuthMixin, CorsHandler):
    def get(self) -> None:
        user = self.hanko_user
        self.write(
            {
                "id": user.id,
                "session_id": user.session_id,
                "email": user.email,
                "email_verified": user.email_verified,
                "username": user.username,
                "amr": list(user.amr),
                "expires_at": user.expires_at.timestamp(),
                "custom": user.claims.get("custom"),
            }
        )


class OptionalHandler(HankoAuthMixin, CorsHandler):
    hanko_optional = True

    def get(self) -> None:
        self.write({"user": self.current_user.id if self.current_user else None})


class ApiKeyMixin(tornado.web.RequestHandler):
    """Another way in beside Hanko: an API key, decided in ``get_current_user``."""

    def get_current_user(self) -> Any:
        return "api-client-1" if self.request.headers.get("X-Api-Key") == "key-1" else None


class ApiKeyOrHankoHandler(HankoAuthMixin, ApiKeyMixin, CorsHandler):
    hanko_optional = True

    def get(self) -> None:
        user = self.current_user
        self.write({"user": user.id if isinstance(user, HankoUser) else user})


class OwnCurrentUserHandler(HankoAuthMixin, CorsHandler):
    hanko_optional = True

    def get_current_user(self) -> Any:
        return "guest-with-pass" if self.get_query_argument("pass", None) == "yes" else None

    def get(self) -> None:
        user = self.current_user
        self.write({"user": user.id if isinstance(user, HankoUser) else user})


class ClaimsHandler(HankoAuthMixin, CorsHandler):
    def get(self) -> None:
        self.write({"claims": self.hanko_user.claims})


class MeddlingHandler(HankoAuthMixin, CorsHandler):
    """Tries to change the verified claims, and says which attempts worked."""

    def get(self) -> None:
        claims: Any = self.hanko_user.claims
        attempts = {
            "append to a list": lambda: claims["roles"].append("admin"),
            "set a nested member": lambda: claims["email"].__setitem__("address", "mallory@example.com"),
            "update a nested object": lambda: claims["email"].update(is_verified=True),
            "set a top-level member": lambda: claims.__setitem__("sub", "someone-else"),
        }
        changed = []
        for name, attempt in attempts.items():
            try:
                attempt()
                changed.append(name)
            except (AttributeError, TypeError):
                pass
        self.write({"changed": changed, "roles": list(claims["roles"]), "email": self.hanko_user.email})


class AuditMixin(tornado.web.RequestHandler):
    async def prepare(self) -> None:
        self.audited = self.current_user.id  # runs after authentication


class ComposedHandler(HankoAuthMixin, AuditMixin, CorsHandler):
    def get(self) -> None:
        self.write({"audited": self.audited})


class EchoSocket(HankoAuthMixin, tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(f"{self.hanko_user.id}:{message!s}")


# The ids every Hanko session token carries: a user and a session, both UUIDs.
SESSION = {"sub": "aaaaaaaa-0000-4000-8000-000000000012", "session_id": "5e551011-0000-4000-8000-000000000012"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


class MixinTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [
                (r"/user", UserHandler),
                (r"/optional", OptionalHandler),
                (r"/composed", ComposedHandler),
                (r"/socket", EchoSocket),
                (r"/api-key-or-hanko", ApiKeyOrHankoHandler),
                (r"/own-current-user", OwnCurrentUserHandler),
                (r"/claims", ClaimsHandler),
                (r"/meddle", MeddlingHandler),
            ],
            hanko=self.hanko.settings(**self.settings_overrides),
            cors=CorsSettings(origins=["http://localhost:3000"]),
        )

    def assert_refused(self, token: str, reason: str, **kwargs: Any) -> None:
        response = self.fetch_with_token("/user", token, raise_error=False, **kwargs)
        self.assertEqual(response.code, 401, response.body)
        body = json.loads(response.body)
        self.assertEqual(body["error"], "invalid_token")
        self.assertIn(reason, body["message"])
        self.assertEqual(response.headers["WWW-Authenticate"], 'Bearer realm="hanko", error="invalid_token"')
        self.assertNotIn(token, response.body.decode())


class TokenLookupTest(MixinTestCase):
    def test_bearer_token_gives_the_user(self) -> None:
        token = self.hanko.mint(
            "aaaaaaaa-0000-4000-8000-000000000001",
            email="ada@example.com",
            username="ada",
            session_id="5e551011-0000-4000-8000-000000000001",
            claims={"custom": 7},
        )
        response = self.fetch_with_token("/user", token)
        self.assertEqual(response.code, 200)
        body = json.loads(response.body)
        self.assertEqual(body["id"], "aaaaaaaa-0000-4000-8000-000000000001")
        self.assertEqual(body["session_id"], "5e551011-0000-4000-8000-000000000001")
        self.assertEqual(body["email"], "ada@example.com")
        self.assertTrue(body["email_verified"])
        self.assertEqual(body["username"], "ada")
        self.assertEqual(body["amr"], ["passkey"])
        self.assertEqual(body["custom"], 7)
        self.assertAlmostEqual(body["expires_at"], time.time() + 3600, delta=5)

    def test_cookie_token_gives_the_user(self) -> None:
        response = self.fetch_with_token("/user", self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000002"), cookie=True)
        self.assertEqual(json.loads(response.body)["id"], "aaaaaaaa-0000-4000-8000-000000000002")

    def test_bearer_scheme_in_any_letter_case(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000003")
        response = self.fetch("/user", headers={"Authorization": f"bEaReR {token}"})
        self.assertEqual(json.loads(response.body)["id"], "aaaaaaaa-0000-4000-8000-000000000003")

    def test_bearer_first_then_cookie(self) -> None:
        good, bad = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000004"), "not.a.token"
        both = self.fetch("/user", headers={"Authorization": f"Bearer {good}", "Cookie": f"hanko={bad}"})
        self.assertEqual(both.code, 200)
        fallen_back = self.fetch("/user", headers={"Authorization": f"Bearer {bad}", "Cookie": f"hanko={good}"})
        self.assertEqual(fallen_back.code, 200, "as Hanko: a bad bearer token gives way to the cookie")

    def test_any_whitespace_after_the_bearer_scheme(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000013")
        for separator in ["\t", "  ", " \t "]:
            with self.subTest(separator=repr(separator)):
                response = self.fetch("/user", headers={"Authorization": f"Bearer{separator}{token}"})
                self.assertEqual(json.loads(response.body)["id"], "aaaaaaaa-0000-4000-8000-000000000013")

    def test_other_authorization_scheme_falls_back_to_cookie(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000005")
        response = self.fetch("/user", headers={"Authorization": "Basic Zm9vOmJhcg==", "Cookie": f"hanko={token}"})
        self.assertEqual(response.code, 200)

    def test_no_token_is_401_without_error_code(self) -> None:
        response = self.fetch("/user")
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(response.body)["error"], "missing_token")
        self.assertEqual(response.headers["WWW-Authenticate"], 'Bearer realm="hanko"')
        self.assertTrue(response.headers["Content-Type"].startswith("application/json"))

    def test_empty_bearer_is_an_invalid_token(self) -> None:
        response = self.fetch("/user", headers={"Authorization": "Bearer "})
        self.assertEqual(json.loads(response.body)["error"], "invalid_token")

    def test_options_is_not_authenticated(self) -> None:
        response = self.fetch("/user", method="OPTIONS")
        self.assertEqual(response.code, 204)


class DuplicateCookieTest(MixinTestCase):
    def assert_duplicates_refused(self, headers: Any, *tokens: str) -> None:
        response = self.fetch("/user", headers=headers)
        self.assertEqual(response.code, 401, response.body)
        body = json.loads(response.body)
        self.assertEqual(body["error"], "invalid_token")
        self.assertIn("more than one session cookie", body["message"])
        for token in tokens:
            self.assertNotIn(token.split(".")[1], response.body.decode())

    def test_two_session_cookies_are_refused(self) -> None:
        victim, attacker = self.hanko.mint(), self.hanko.mint()
        self.assert_duplicates_refused({"Cookie": f"hanko={victim}; hanko={attacker}"}, victim, attacker)
        self.assert_duplicates_refused({"Cookie": f"hanko={victim};hanko= {victim}"}, victim)
        self.assert_duplicates_refused({"Cookie": f"hanko=; hanko={victim}"}, victim)
        basic = {"Authorization": "Basic Zm9vOmJhcg==", "Cookie": f"hanko={victim}; hanko={attacker}"}
        self.assert_duplicates_refused(basic, victim, attacker)

    def test_session_cookies_in_two_cookie_headers_are_refused(self) -> None:
        victim, attacker = self.hanko.mint(), self.hanko.mint()
        headers = HTTPHeaders()
        headers.add("Cookie", f"hanko={victim}")
        headers.add("Cookie", f"theme=dark; hanko={attacker}")
        with captured_logs() as lines:
            self.assert_duplicates_refused(headers, victim, attacker)
        self.assertTrue(any("more than one session cookie" in line for line in lines), lines)
        for part in victim.split(".") + attacker.split("."):
            self.assertFalse(any(part in line for line in lines), f"token part logged: {part[:8]}")

    def test_an_optional_handler_refuses_them_too(self) -> None:
        token = self.hanko.mint()
        response = self.fetch("/optional", headers={"Cookie": f"hanko={token}; hanko={token}"})
        self.assertEqual((response.code, json.loads(response.body)["error"]), (401, "invalid_token"))

    def test_a_bearer_header_decides_without_the_cookies(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000015")
        headers = {"Authorization": f"Bearer {token}", "Cookie": "hanko=a; hanko=b"}
        self.assertEqual(
            json.loads(self.fetch("/user", headers=headers).body)["id"], "aaaaaaaa-0000-4000-8000-000000000015"
        )

    def test_other_cookies_that_mention_the_name_are_fine(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000016")
        for cookie in [f"hanko_theme=hanko; hanko={token}; xhanko=1", f"hanko={token}; Hanko=other; other=hanko=x"]:
            with self.subTest(cookie=cookie[:12]):
                response = self.fetch("/user", headers={"Cookie": cookie})
                self.assertEqual(json.loads(response.body)["id"], "aaaaaaaa-0000-4000-8000-000000000016")


class RefusalTest(MixinTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"leeway": 30}

    def test_garbage(self) -> None:
        for token in ["abc", "a.b", "a.b.c.d", "a.b.c", "é.b.c", "eyJ.eyJ.x"]:
            self.assert_refused(token, "malformed")

    def test_only_the_base64url_alphabet(self) -> None:
        header, payload, signature = self.hanko.mint().split(".")
        for token in [
            f"{header}.{payload}.{signature}=",
            f"{header}=.{payload}.{signature}",
            f"{header}.{payload}.{signature[:-1]}+",
            f"{header}.{payload[:-1]}/.{signature}",
            f"{header}..{payload}.{signature}",
        ]:
            with self.subTest(token=token[-3:]):
                self.assert_refused(token, "malformed")

    def test_expired_beyond_leeway(self) -> None:
        self.assert_refused(self.hanko.mint(lifetime=-31), "expired")

    def test_expired_within_leeway_is_accepted(self) -> None:
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint(lifetime=-20)).code, 200)

    def test_not_before_and_issued_at_in_the_future(self) -> None:
        now = int(time.time())
        self.assert_refused(self.hanko.mint(claims={"nbf": now + 120}), "not valid yet")
        self.assert_refused(self.hanko.mint(claims={"iat": now + 120}), "future")

    def test_required_claims(self) -> None:
        self.assert_refused(self.hanko.mint(claims={"exp": None}), "exp")
        self.assert_refused(self.hanko.mint(claims={"sub": None}), "not a session token")
        self.assert_refused(self.hanko.mint(claims={"exp": "tomorrow"}), "exp")
        self.assert_refused(self.hanko.mint(claims={"exp": 10**400}), "exp")

    def test_only_session_tokens_open_a_session(self) -> None:
        for claims in (
            {"session_id": None},
            {"session_id": "s-1"},
            {"session_id": 7},
            {"sub": "hanko webhooks"},
            {"sub": "{aaaaaaaa-0000-4000-8000-000000000012}"},
            {"session_id": "5e551011-0000-4000-8000-0000000000123"},
        ):
            with self.subTest(claims=claims):
                self.assert_refused(self.hanko.mint(claims=claims), "not a session token")

    def test_wrong_audience(self) -> None:
        self.assert_refused(self.hanko.mint(audience=["evil.example"]), "audience")
        self.assert_refused(self.hanko.mint(claims={"aud": None}), "audience")

    def test_signed_by_an_unpublished_key_with_a_published_kid(self) -> None:
        outsider = SigningKey.generate(key_size=2048, kid=self.hanko.keys[0].kid)
        self.assert_refused(self.hanko.mint(key=outsider), "bad signature")

    def test_unknown_kid(self) -> None:
        self.assert_refused(self.hanko.mint(key=SigningKey.generate(key_size=2048)), "unknown signing key")

    def test_tampered_payload(self) -> None:
        header, payload, signature = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000001").split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["sub"] = "admin"
        self.assert_refused(".".join([header, b64(json.dumps(claims).encode()), signature]), "bad signature")

    def test_too_large_token_is_refused_before_fetching_keys(self) -> None:
        self.assert_refused("a" * (16 * 1024 + 1), "too large")
        self.assertEqual(self.hanko.jwks_fetches, 0)

    def test_alg_none_and_hmac_with_the_public_key(self) -> None:
        key = self.hanko.keys[0]
        claims = {"sub": "admin", "exp": int(time.time()) + 600, "aud": ["localhost"]}
        self.assert_refused(forge({"alg": "none", "kid": key.kid}, claims, b""), "malformed")
        self.assert_refused(forge({"alg": "none", "kid": key.kid}, claims), "algorithm")
        public_pem = key.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        header = {"alg": "HS256", "kid": key.kid}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        self.assert_refused(f"{signing_input}.{b64(mac)}", "algorithm")

    def test_algorithm_swap_to_ps256(self) -> None:
        key = self.hanko.keys[0]
        claims = {"sub": "u", "exp": int(time.time()) + 600, "aud": ["localhost"]}
        token = jwt.encode(claims, key.private_key, "PS256", headers={"kid": key.kid})
        self.assert_refused(token, "does not match")

    def test_critical_header(self) -> None:
        self.assert_refused(self.hanko.mint(headers={"crit": ["exp"]}), "critical")

    def test_duplicate_header_member(self) -> None:
        token = self.hanko.mint()
        header = '{"alg":"RS256","kid":"x","alg":"RS256"}'
        self.assert_refused(".".join([b64(header.encode()), *token.split(".")[1:]]), "malformed")

    def test_kid_less_token_with_one_fitting_key(self) -> None:
        claims = {**SESSION, "exp": int(time.time()) + 600, "aud": ["localhost"]}
        token = jwt.encode(claims, self.hanko.keys[0].private_key, "RS256")
        self.assertEqual(self.fetch_with_token("/user", token).code, 200)

    def test_kid_less_token_with_two_fitting_keys(self) -> None:
        self.hanko.rotate_key()
        claims = {**SESSION, "exp": int(time.time()) + 600, "aud": ["localhost"]}
        self.assert_refused(jwt.encode(claims, self.hanko.keys[0].private_key, "RS256"), "unknown signing key")


class IssuerTest(MixinTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"issuer": "https://auth.example.com"}

    def test_issuer_checked_when_configured(self) -> None:
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint(issuer="https://auth.example.com")).code, 200)
        self.assert_refused(self.hanko.mint(issuer="https://evil.example.com"), "issuer")
        self.assert_refused(self.hanko.mint(), "issuer")


class NoAudienceTest(MixinTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"audience": ()}

    def test_audience_not_checked_when_not_configured(self) -> None:
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint(audience=["anything"])).code, 200)


class OptionalAuthTest(MixinTestCase):
    def test_anonymous_is_let_in(self) -> None:
        self.assertEqual(json.loads(self.fetch("/optional").body), {"user": None})

    def test_valid_token_gives_the_user(self) -> None:
        response = self.fetch_with_token("/optional", self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000007"))
        self.assertEqual(json.loads(response.body), {"user": "aaaaaaaa-0000-4000-8000-000000000007"})

    def test_invalid_token_is_still_refused(self) -> None:
        response = self.fetch_with_token("/optional", self.hanko.mint(lifetime=-3600), raise_error=False)
        self.assertEqual(response.code, 401)

    def test_anonymous_falls_back_to_the_handlers_own_get_current_user(self) -> None:
        self.assertEqual(
            json.loads(self.fetch("/api-key-or-hanko", headers={"X-Api-Key": "key-1"}).body), {"user": "api-client-1"}
        )
        self.assertEqual(json.loads(self.fetch("/api-key-or-hanko").body), {"user": None})
        self.assertEqual(json.loads(self.fetch("/own-current-user?pass=yes").body), {"user": "guest-with-pass"})
        self.assertEqual(json.loads(self.fetch("/own-current-user").body), {"user": None})

    def test_a_hanko_token_still_decides_when_sent(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000017")
        response = self.fetch_with_token("/api-key-or-hanko", token, headers={"X-Api-Key": "key-1"})
        self.assertEqual(json.loads(response.body), {"user": "aaaaaaaa-0000-4000-8000-000000000017"})
        expired = self.hanko.mint(lifetime=-3600)
        refused = self.fetch_with_token("/api-key-or-hanko", expired, headers={"X-Api-Key": "key-1"}, raise_error=False)
        self.assertEqual((refused.code, json.loads(refused.body)["error"]), (401, "invalid_token"))


class FrozenClaimsTest(MixinTestCase):
    def test_claims_are_written_as_json(self) -> None:
        token = self.hanko.mint(claims={"roles": ["reader"], "org": {"id": 7, "teams": [{"name": "a"}]}})
        payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        for _ in range(2):  # verified, then remembered
            self.assertEqual(json.loads(self.fetch_with_token("/claims", token).body), {"claims": payload})

    def test_a_handler_cannot_change_the_claims_later_requests_see(self) -> None:
        token = self.hanko.mint(email="ada@example.com", claims={"roles": ["reader"]})
        for _ in range(2):  # the second request gets the remembered user
            body = json.loads(self.fetch_with_token("/meddle", token).body)
            self.assertEqual(body, {"changed": [], "roles": ["reader"], "email": "ada@example.com"})


class CompositionTest(MixinTestCase):
    def test_super_prepare_runs_after_authentication(self) -> None:
        response = self.fetch_with_token("/composed", self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000006"))
        self.assertEqual(json.loads(response.body), {"audited": "aaaaaaaa-0000-4000-8000-000000000006"})

    def test_super_prepare_does_not_run_when_refused(self) -> None:
        self.assertEqual(self.fetch("/composed").code, 401)


class WebSocketTest(MixinTestCase):
    @gen_test
    async def test_socket_with_token(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000009")
        url = f"ws://127.0.0.1:{self.get_http_port()}/socket"
        request = tornado.httpclient.HTTPRequest(url, headers={"Authorization": f"Bearer {token}"})
        connection = await tornado.websocket.websocket_connect(request)
        connection.write_message("hi")
        self.assertEqual(await connection.read_message(), "aaaaaaaa-0000-4000-8000-000000000009:hi")
        connection.close()

    @gen_test
    async def test_socket_without_token_is_refused(self) -> None:
        with self.assertRaises(HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{self.get_http_port()}/socket")
        self.assertEqual(refused.exception.code, 401)


class LogTest(MixinTestCase):
    # An unknown kid waits for the next fetch this process may make: keep that short.
    settings_overrides: ClassVar[dict[str, Any]] = {"refetch_interval": 0.3}

    def test_no_log_line_holds_a_token(self) -> None:
        tokens = [
            self.hanko.mint(),
            self.hanko.mint(lifetime=-3600),
            self.hanko.mint(key=SigningKey.generate(key_size=2048)),
            self.hanko.mint(audience=["evil"]),
            "gArBaGe1.tOkEn2.vAlUe3",
        ]
        with captured_logs() as lines:
            for token in tokens:
                self.fetch_with_token("/user", token, raise_error=False)
                self.fetch_with_token("/user", token, cookie=True, raise_error=False)
        self.assertTrue(any("refused a session token" in line for line in lines), lines)
        for token in tokens:
            for part in token.split("."):
                self.assertFalse(any(part in line for line in lines), f"token part logged: {part[:8]}")
