"""FakeHanko's HTTP side: the key set and session validation, with Hanko's statuses and bodies."""

from __future__ import annotations

import asyncio
import json

import tornado.web

from hanko_tornado.testing.tenant import FakeTenant, Fault

__all__ = ["JwksHandler", "ValidateHandler"]


class _FakeHandler(tornado.web.RequestHandler):
    def initialize(self, hanko: FakeTenant) -> None:
        self.hanko = hanko

    async def answer_fault(self, fault: Fault | None) -> bool:
        """Fail as ``fault`` says; whether the answer is finished."""
        if fault == "slow":
            await asyncio.sleep(self.hanko.slow_seconds)
        if fault == "drop":
            self.request.connection.close()  # type: ignore[union-attr]
            return True
        if fault == "error":
            self.answer(500, {"code": 500, "message": "Internal Server Error"})
            return True
        if fault == "garbage":
            self.finish("<html>garbage")
            return True
        return False

    def answer(self, status: int, body: dict[str, object]) -> None:
        self.set_status(status)
        self.finish(body)


class JwksHandler(_FakeHandler):
    """``GET /.well-known/jwks.json``: the published keys, or the fault asked for."""

    async def get(self) -> None:
        self.hanko.jwks_fetches += 1
        if await self.answer_fault(self.hanko.fault):
            return
        self.set_header("Cache-Control", f"max-age={self.hanko.max_age}")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.hanko.jwks()))


class ValidateHandler(_FakeHandler):
    """``GET``/``POST /sessions/validate``: Hanko's answer about a session token."""

    async def prepare(self) -> None:
        self.hanko.validations += 1
        await self.answer_fault(self.hanko.session_fault)

    def get(self) -> None:
        # Hanko tries the bearer header, then the cookie; the first valid one wins, a 400 ends the search.
        candidates = []
        authorization = self.request.headers.get("Authorization", "")
        if authorization[:6].lower() == "bearer" and authorization[6:].strip():
            candidates.append(authorization[6:].strip())
        cookie = self.get_cookie(self.hanko.cookie_name)
        if cookie:
            candidates.append(cookie)
        for token in candidates:
            status, body = self.hanko.validate(token)
            if status != 200 or body["is_valid"]:
                self.answer(status, body)
                return
        self.answer(200, {"is_valid": False})

    def post(self) -> None:
        try:
            token = json.loads(self.request.body).get("session_token")
        except (ValueError, AttributeError):
            self.answer(400, {"code": 400, "message": "Bad Request"})
            return
        if not isinstance(token, str) or not token:
            self.answer(400, {"code": 400, "message": "session_token is a required field"})
            return
        self.answer(*self.hanko.validate(token, renew=True))
