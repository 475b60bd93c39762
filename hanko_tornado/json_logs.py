"""Logs as one JSON object per line, for log pipelines: every record, and one access line per request.

``server.py`` turns it on with ``LOG_FORMAT=json``; an application can too::

    log_as_json("INFO")  # every record to stderr as JSON
    app = tornado.web.Application(routes, hanko=settings)
    log_requests_as_json(app)  # X-Request-Id, and one access line per request

Each request gets an id (a sane ``X-Request-Id`` it came with, else a new
one), sent back as ``X-Request-Id`` and written in its access line with the
method, the path (never the query), the status, the duration and, for a
refused token, the refusal reason.  Whatever is shaped like a JWT is written
as ``[token]``, wherever it appears, so no token reaches the logs.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import uuid
from typing import Any

import tornado.httputil
import tornado.web

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RequestIdTransform",
    "log_as_json",
    "log_request_as_json",
    "log_requests_as_json",
    "request_id",
]

#: The header a request id comes in with and goes back out in.
REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?")
_ATTRIBUTE = "_hanko_request_id"
_FIELDS = "hanko_fields"
access_log = logging.getLogger("tornado.access")


def request_id(request: tornado.httputil.HTTPServerRequest) -> str:
    """The request's id: the one :class:`RequestIdTransform` gave it, else its sane ``X-Request-Id``, else a new one."""
    known = getattr(request, _ATTRIBUTE, None)
    if isinstance(known, str):
        return known
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    chosen = offered if _SANE_REQUEST_ID.fullmatch(offered) and not _JWT_SHAPED.search(offered) else uuid.uuid4().hex
    setattr(request, _ATTRIBUTE, chosen)
    return chosen


class RequestIdTransform(tornado.web.OutputTransform):
    """Gives each request its id (:func:`request_id`) and sends it back as ``X-Request-Id``."""

    def __init__(self, request: tornado.httputil.HTTPServerRequest) -> None:
        super().__init__(request)
        self._id = request_id(request)

    def transform_first_chunk(
        self, status_code: int, headers: tornado.httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, tornado.httputil.HTTPHeaders, bytes]:
        headers[REQUEST_ID_HEADER] = self._id
        return status_code, headers, chunk


def log_request_as_json(handler: tornado.web.RequestHandler) -> None:
    """Tornado's ``log_function``: one access line per request, its fields as members (see :class:`JsonFormatter`)."""
    status = handler.get_status()
    request = handler.request
    fields: dict[str, Any] = {
        "request_id": request_id(request),
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(1000 * request.request_time(), 3),
        "remote_ip": request.remote_ip,
    }
    reason = getattr(handler, "hanko_refusal_reason", None)
    if isinstance(reason, str):
        fields["reason"] = reason
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    access_log.log(level, "%s %s %d", request.method, request.path, status, extra={_FIELDS: fields})


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: ``time``, ``level``, ``logger``, ``message``, then the request's fields.

    An exception is written as ``exception`` (its traceback in one string). JWT-shaped text becomes ``[token]``.
    """

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _JWT_SHAPED.sub("[token]", json.dumps(entry, default=str, ensure_ascii=False))


def log_as_json(level: int | str = logging.INFO) -> None:
    """Send every log record to stderr as one line of JSON (:class:`JsonFormatter`), at ``level`` and above."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def log_requests_as_json(app: tornado.web.Application) -> None:
    """Give ``app``'s requests ids (:class:`RequestIdTransform`) and JSON access lines (:func:`log_request_as_json`)."""
    app.settings["log_function"] = log_request_as_json
    app.add_transform(RequestIdTransform)
