"""An HTTP server that stops without losing a request, and refuses oversized requests before reading them.

Stopping (:meth:`GracefulHTTPServer.drain`) follows Envoy's drain and Kubernetes' practice: the server
keeps accepting and serving for a delay while every answer says ``Connection: close`` (clients move to
other processes as they finish a request, and load balancers read ``/readyz`` failing); then it stops
listening, answers every request that arrived (in flight, or sent on a keep-alive connection) and closes
each connection once it is idle.  A request whose headers or ``Content-Length`` exceed the bounds gets
431 or 413 at once: the handler never runs, the body is never buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import socket
from collections.abc import Awaitable, Mapping
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.web

from hanko_tornado.health import ReadinessHandler

__all__ = ["STOPPING", "GracefulHTTPServer", "StoppingReadinessHandler"]

log = logging.getLogger("server")

#: The application setting that is true once the process is stopping: readiness answers 503.
STOPPING = "hanko_tornado.stopping"
#: Tornado itself closes, unanswered, a connection whose headers exceed this many times the bound (128 KiB by default).
_HEADER_HARD_LIMIT_FACTOR = 8
#: A refused request's body is read and dropped for up to this long, so the client reads the answer.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1024 * 1024
_POLL_SECONDS = 0.05


class StoppingReadinessHandler(ReadinessHandler):
    """:class:`~hanko_tornado.health.ReadinessHandler`, answering 503 ``stopping`` once the process is stopping."""

    async def get(self, *args: str, **kwargs: str) -> None:
        if not self.application.settings.get(STOPPING):
            await super().get(*args, **kwargs)
            return
        self.set_status(503)
        self.set_header("Cache-Control", "no-store")
        self.finish({"status": "stopping", "problems": ["the process is stopping: it takes no new work"]})


class GracefulHTTPServer(tornado.httpserver.HTTPServer):
    """An ``HTTPServer`` with :meth:`drain`, and bounds checked on every request's headers.

    :param max_header_size: bytes of start line and headers; more is 431 (Tornado closes the connection,
        unanswered, past eight times this).
    :param max_body_size: bytes of body (by ``Content-Length``, and as a chunked body arrives); more is 413.
    :param body_limits: larger body bounds for some paths (exact match), such as the webhook route's.
    """

    def initialize(  # type: ignore[override]
        self,
        request_callback: Any,
        *,
        max_header_size: int,
        max_body_size: int,
        body_limits: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.header_limit, self.body_limit = max_header_size, max_body_size
        self.body_limits = dict(body_limits or {})
        super().initialize(
            request_callback,
            max_header_size=max_header_size * _HEADER_HARD_LIMIT_FACTOR,
            max_body_size=max([max_body_size, *self.body_limits.values()]),
            **kwargs,
        )
        self._open: set[Any] = set()  # HTTP1ServerConnections
        self._answering: set[Any] = set()
        self._refused: set[tornado.iostream.IOStream] = set()
        self._refusing: set[asyncio.Future[None]] = set()

    @property
    def requests_in_flight(self) -> int:
        """Requests whose headers arrived and whose answer is not sent yet."""
        return len(self._answering)

    async def drain(self, delay: float, grace: float, hurry: asyncio.Event | None = None) -> int:
        """Stop as the module says: serve ``delay`` seconds more (less once ``hurry`` is set), then finish.

        Returns, after at most ``grace`` seconds, the number of requests still in flight, whose
        connections are then closed like every other.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        self.conn_params.no_keep_alive = True  # from now on every answer says Connection: close
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for((hurry or asyncio.Event()).wait(), min(delay, grace))
        self.stop()
        log.info(
            "no longer listening: %d request(s) in flight get up to %.3g s to finish",
            self.requests_in_flight,
            max(0.0, deadline - loop.time()),
        )
        while (self._open or self._refused) and loop.time() < deadline:
            self._close_idle_connections()
            await asyncio.sleep(_POLL_SECONDS)
        unfinished = self.requests_in_flight
        for stream in list(self._refused):
            stream.close()
        await self.close_all_connections()
        return unfinished

    def _close_idle_connections(self) -> None:
        for connection in list(self._open - self._answering):
            if not _request_arriving(connection.stream):
                connection.stream.close()

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        # Tornado starts a connection's next request once the last one is answered, and its first at once.
        self._open.add(server_conn)
        self._answering.discard(server_conn)
        return _Guard(self, server_conn, request_conn, super().start_request(server_conn, request_conn))

    def on_close(self, server_conn: object) -> None:
        self._open.discard(server_conn)
        self._answering.discard(server_conn)
        super().on_close(server_conn)

    def refusal(self, start_line: tornado.httputil.RequestStartLine, headers: tornado.httputil.HTTPHeaders) -> int:
        """The status that refuses this request (431, 413), or 0 when it is within bounds."""
        size = len(start_line.method) + len(start_line.path) + len(start_line.version) + 4
        size += sum(len(name) + len(value) + 4 for name, value in headers.get_all())
        if size > self.header_limit:
            return 431
        limit = self.body_limit_for(start_line.path)
        length = headers.get("Content-Length", "0").strip()
        if length.isascii() and length.isdigit() and int(length) > limit:
            return 413
        return 0

    def refuse(self, request_conn: Any, status: int) -> None:
        """Answer ``status`` on a connection taken from Tornado, read and drop what follows a while, close it."""
        stream: tornado.iostream.IOStream = request_conn.detach()
        self._refused.add(stream)
        answering = asyncio.ensure_future(self._answer_and_linger(stream, status))
        self._refusing.add(answering)  # held until done: the loop keeps only a weak reference to a task
        answering.add_done_callback(self._refusing.discard)

    def body_limit_for(self, path: str) -> int:
        """The body bound of the route at ``path``."""
        return self.body_limits.get(path.partition("?")[0], self.body_limit)

    async def _answer_and_linger(self, stream: tornado.iostream.IOStream, status: int) -> None:
        error = "header_fields_too_large" if status == 431 else "payload_too_large"
        message = "The request's headers are too large." if status == 431 else "The request's body is too large."
        body = json.dumps({"error": error, "message": message}).encode()
        reason = http.HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            await stream.write(head.encode() + body)
            with contextlib.suppress(OSError):
                stream.socket.shutdown(socket.SHUT_WR)
            dropped, until = 0, asyncio.get_running_loop().time() + _LINGER_SECONDS
            while dropped < _LINGER_BYTES:
                left = until - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                dropped += len(await asyncio.wait_for(stream.read_bytes(64 * 1024, partial=True), left))
        except (tornado.iostream.StreamClosedError, asyncio.TimeoutError, OSError):
            pass
        finally:
            stream.close()
            self._refused.discard(stream)

    def answering(self, server_conn: object) -> None:
        self._answering.add(server_conn)


def _request_arriving(stream: tornado.iostream.IOStream) -> bool:
    """Whether bytes of a next request came in on an idle connection: then it is answered, not cut off."""
    if getattr(stream, "_read_buffer_size", 0):  # a request's first bytes, read before its headers are whole
        return True
    try:
        return bool(stream.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False


class _Guard(tornado.httputil.HTTPMessageDelegate):
    """Passes a request on to ``delegate`` once its headers are within bounds; refuses it otherwise."""

    def __init__(
        self,
        server: GracefulHTTPServer,
        server_conn: object,
        request_conn: tornado.httputil.HTTPConnection,
        delegate: tornado.httputil.HTTPMessageDelegate,
    ) -> None:
        self.server, self.server_conn, self.request_conn, self.delegate = server, server_conn, request_conn, delegate
        self.passed = False

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        status = self.server.refusal(start_line, headers)
        if status:
            self.server.refuse(self.request_conn, status)
            return None
        self.passed = True
        # A chunked body past the route's bound ends the connection with Tornado's 400 as it arrives.
        self.request_conn.set_max_body_size(self.server.body_limit_for(start_line.path))  # type: ignore[attr-defined]
        self.server.answering(self.server_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        if self.passed:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.passed:
            self.delegate.on_connection_close()
