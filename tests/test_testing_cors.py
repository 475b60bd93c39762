"""FakeHanko's CORS, as Hanko's TenantAwareCORS (echo's CORS middleware with credentials) answers; and the testing
kit's imports going one way."""

from __future__ import annotations

import ast
import pathlib

from tornado.httpclient import HTTPResponse
from tornado.testing import AsyncTestCase, gen_test

import hanko_tornado
from hanko_tornado.testing import FakeHanko
from hanko_tornado.testing.control import control_routes
from hanko_tornado.testing.frontend import FakeFrontendApi

FRONTEND = "http://localhost:3000"
TESTING = pathlib.Path(hanko_tornado.__file__).resolve().parent / "testing"  # the checkout, or the installed wheel
EXPOSED = "Retry-After,X-RateLimit-Limit,X-RateLimit-Remaining,X-RateLimit-Reset,X-Session-Lifetime,"
EXPOSED += "X-Session-Retention,X-Auth-Token"


class FakeHankoCorsTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048, cors_origins=(FRONTEND,))
        self.hanko.start(control_routes(self.hanko), public_routes=FakeFrontendApi(self.hanko).routes())

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    async def fetch(self, path: str, method: str = "GET", **headers: str) -> HTTPResponse:
        from tornado.httpclient import AsyncHTTPClient

        return await AsyncHTTPClient().fetch(
            self.hanko.api_url + path, method=method, headers=headers, raise_error=False, allow_nonstandard_methods=True
        )

    @gen_test(timeout=30)
    async def test_a_preflight_from_the_frontend_is_answered_as_hanko_does(self) -> None:
        asked = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,content-type"}
        for path in ("/sessions/validate", "/login", "/.well-known/jwks.json", "/no/such/path"):
            with self.subTest(path=path):
                response = await self.fetch(path, "OPTIONS", Origin=FRONTEND, **asked)
                self.assertEqual(response.code, 204)
                self.assertEqual(response.headers["Access-Control-Allow-Origin"], FRONTEND)
                self.assertEqual(response.headers["Access-Control-Allow-Credentials"], "true")
                self.assertEqual(response.headers["Access-Control-Allow-Methods"], "GET,POST,PUT,PATCH,DELETE,OPTIONS")
                self.assertEqual(response.headers["Access-Control-Allow-Headers"], "authorization,content-type")
                self.assertEqual(response.headers["Access-Control-Max-Age"], "7200")
                self.assertEqual(
                    response.headers.get_list("Vary"),
                    ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"],
                )
                self.assertNotIn("Access-Control-Expose-Headers", response.headers)

    @gen_test(timeout=30)
    async def test_another_origin_gets_no_cors_headers_and_never_a_star(self) -> None:
        preflight = await self.fetch(
            "/sessions/validate", "OPTIONS", Origin="https://evil.example", **{"Access-Control-Request-Method": "GET"}
        )
        self.assertEqual(preflight.code, 204)
        answer = await self.fetch("/sessions/validate", Origin="https://evil.example")
        for response in (preflight, answer):
            self.assertEqual(response.headers.get_list("Vary"), ["Origin"])
            self.assertFalse([name for name in response.headers if name.lower().startswith("access-control-")])
        self.assertEqual(answer.code, 200, "echo lets the request through: the browser is what refuses it")

    @gen_test(timeout=30)
    async def test_answers_to_the_frontend_name_it_with_credentials_and_expose_hankos_headers(self) -> None:
        token = self.hanko.mint()
        answers = [
            await self.fetch("/sessions/validate", Origin=FRONTEND, Authorization=f"Bearer {token}"),
            await self.fetch("/.well-known/jwks.json", Origin=FRONTEND),
            await self.fetch("/sessions/validate", "POST", Origin=FRONTEND),  # a 400, still with CORS headers
        ]
        self.assertEqual([response.code for response in answers], [200, 200, 400])
        for response in answers:
            self.assertEqual(response.headers["Access-Control-Allow-Origin"], FRONTEND)
            self.assertEqual(response.headers["Access-Control-Allow-Credentials"], "true")
            self.assertEqual(response.headers["Access-Control-Expose-Headers"], EXPOSED)
            self.assertEqual(response.headers.get_list("Vary"), ["Origin"])

    @gen_test(timeout=30)
    async def test_the_admin_api_and_the_control_endpoints_grant_no_cors(self) -> None:
        for path in ("/admin/users", "/_fake/sessions"):
            with self.subTest(path=path):
                answer = await self.fetch(path, Origin=FRONTEND)
                self.assertEqual(answer.code, 200)
                self.assertNotIn("Access-Control-Allow-Origin", answer.headers)
                preflight = await self.fetch(path, "OPTIONS", Origin=FRONTEND)
                self.assertEqual(preflight.code, 405)
                self.assertNotIn("Access-Control-Allow-Origin", preflight.headers)

    @gen_test(timeout=30)
    async def test_hankos_default_origin_and_origins_changed_on_a_running_fake(self) -> None:
        default = FakeHanko(key_size=2048)
        self.assertEqual(default.cors_origins, ("http://localhost:8888",))
        self.hanko.cors_origins = ("http://localhost:8888",)
        before = await self.fetch("/.well-known/jwks.json", Origin=FRONTEND)
        after = await self.fetch("/.well-known/jwks.json", Origin="http://localhost:8888")
        self.assertNotIn("Access-Control-Allow-Origin", before.headers)
        self.assertEqual(after.headers["Access-Control-Allow-Origin"], "http://localhost:8888")


def imports_of(path: pathlib.Path) -> set[str]:
    """The ``hanko_tornado.testing`` modules ``path`` imports: at the top, in functions, under TYPE_CHECKING."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[2] for name in names if name.startswith("hanko_tornado.testing.")}
    return found - {path.stem}


class ImportsTest(AsyncTestCase):
    def test_the_testing_kit_imports_one_way(self) -> None:
        graph = {path.stem: imports_of(path) & {p.stem for p in TESTING.glob("*.py")} for path in TESTING.glob("*.py")}
        self.assertIn("tenant", graph["handlers"], "control: the graph sees the imports")
        circles = []

        def visit(module: str, path: list[str]) -> None:
            for imported in sorted(graph[module]):
                if imported in path:
                    circles.append([*path[path.index(imported) :], imported])
                else:
                    visit(imported, [*path, imported])

        for module in sorted(graph):
            visit(module, [module])
        self.assertEqual(circles, [])
