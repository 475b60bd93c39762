"""``python -m hanko_tornado check``: why is my token refused?

Fetches the keys from ``--api-url`` (else ``HANKO_API_URL`` from the
environment or ``./.env``, and likewise the audience and issuer), verifies the token with the same code and
settings as :class:`~hanko_tornado.mixin.HankoAuthMixin`, and prints the
token's header and claims, the verdict, its reason, and a hint where one fits
(for a token that does not parse, which part is broken).
It never prints the token or any part of it: every line it prints (log lines
too) goes through a mask, and a rejected option is reported without its value.  Exit status: 0 valid, 1 refused,
2 a wrong option, 3 Hanko's keys unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn, TextIO

from hanko_tornado.env_file import read_env_file
from hanko_tornado.errors import ConfigurationError, InvalidTokenError, UnavailableError
from hanko_tornado.settings import HankoSettings
from hanko_tornado.token_shape import token_shape_problem
from hanko_tornado.tokens import TokenVerifier
from hanko_tornado.webhooks import WEBHOOK_SUBJECT

__all__ = ["main"]

_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_=-]{8,}\.[A-Za-z0-9_=.-]+")
# A JWT's header is JSON, so base64url that starts "eyJ" ('{"'); the rest of it, dots and all, goes too.
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_=+/-]*(?:\.[A-Za-z0-9_=+/-]*)*")
_SHORTEST_SECRET = 8
_ENVIRONMENT = (("api_url", "HANKO_API_URL"), ("audience", "HANKO_AUDIENCE"), ("issuer", "HANKO_ISSUER"))


def main(
    argv: list[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str = ".env",
) -> int:
    """Run the command line; returns the exit status.

    ``--api-url``, ``--audience`` and ``--issuer``, when absent, are read from
    ``HANKO_API_URL``, ``HANKO_AUDIENCE`` and ``HANKO_ISSUER`` in ``environ``
    (``os.environ``), else in ``env_file`` (``./.env``), as server.py reads them.
    """
    args = _parser().parse_args(argv)
    out = _MaskedOutput(stdout or sys.stdout)
    for word in args.token:
        out.add_secret(word)
    sources = _fill_from_environment(args, os.environ if environ is None else environ, env_file)
    if args.api_url is None:
        out.say("hanko_tornado check: no API URL: pass --api-url, or set HANKO_API_URL (environment or ./.env)")
        return 2
    try:
        settings = HankoSettings(
            api_url=args.api_url,
            audience=tuple(a.strip() for a in ",".join(args.audience).split(",") if a.strip()),
            issuer=args.issuer,
            leeway=args.leeway,
            allow_http=args.allow_http,
        )
    except ConfigurationError as error:  # before reading standard input: a wrong option never waits for it
        # The rejected value is never echoed: it may be a token given in the wrong place (an unset
        # $HANKO_API_URL before $TOKEN makes the token the API URL).
        rejected = {"api_url": args.api_url, "issuer": args.issuer}.get(error.setting)
        out.say(f"hanko_tornado check: {error}", hide=rejected)
        return 2
    # "Bearer eyJ..." pasted unquoted arrives as two words: every word is part of the token, never an error.
    words = [word for word in args.token if word.lower() != "bearer"]
    token = " ".join(words) if words and words != ["-"] else (stdin or sys.stdin).read()
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    out.add_secret(token)
    header, claims = _unverified_parts(token)
    if sources:
        out.say(f"from:    {', '.join(sources)}")
    out.say(f"keys:    {settings.jwks_url}")
    out.say(f"header:  {_show(header)}")
    out.say(f"claims:  {_show(claims)}")
    with out.masking_logs():
        return asyncio.run(_verdict(settings, token, claims, out))


class _MaskedOutput:
    """Where ``check`` writes: every line (its log lines too) through the token mask first.

    The mask hides the token, each of its parts, and anything shaped like a JWT.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._secrets: set[str] = set()

    def add_secret(self, token: str) -> None:
        """Hide ``token`` and each of its dot-separated parts from now on (short ones hide nothing)."""
        self._secrets.update(part for part in [token, *token.split(".")] if len(part) >= _SHORTEST_SECRET)

    def mask(self, text: str, *, hide: str | None = None) -> str:
        """``text`` with every secret replaced, and ``hide`` too (a rejected value: written as given, or quoted)."""
        if hide:
            text = text.replace(repr(hide), "<the value given>").replace(hide, "<the value given>")
        for secret in sorted(self._secrets, key=len, reverse=True):  # a whole token before its parts
            text = text.replace(secret, "<token>")
        return _JWT_LIKE.sub("<token>", text)

    def say(self, text: str, *, hide: str | None = None) -> None:
        print(self.mask(text, hide=hide), file=self.out)

    @contextlib.contextmanager
    def masking_logs(self) -> Iterator[None]:
        """The library's log lines (a key endpoint failing, say) printed through the mask, not left to stderr."""
        handler = _MaskedLogHandler(self)
        logger = logging.getLogger("hanko_tornado")
        logger.addHandler(handler)
        propagate, logger.propagate = logger.propagate, False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate


class _MaskedLogHandler(logging.Handler):
    def __init__(self, out: _MaskedOutput) -> None:
        super().__init__(logging.WARNING)
        self.masked = out

    def emit(self, record: logging.LogRecord) -> None:
        self.masked.say(f"log:     {record.getMessage()}")


def _fill_from_environment(args: argparse.Namespace, environ: Mapping[str, str], env_file: str) -> list[str]:
    """Fill the settings flags left out from ``environ``, then ``env_file``; where each came from, for showing."""
    file_values: dict[str, str] | None = None
    sources = []
    for attribute, name in _ENVIRONMENT:
        if getattr(args, attribute) not in (None, []):
            continue
        value, source = environ.get(name), "the environment"
        if value is None:
            file_values = read_env_file(env_file) if file_values is None else file_values
            value, source = file_values.get(name), env_file
        if value is None or not value.strip():
            continue
        setattr(args, attribute, [value] if attribute == "audience" else value.strip())
        sources.append(f"{name} from {source}")
    return sources


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m hanko_tornado", description="Diagnose Hanko session tokens.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = commands.add_parser("check", help="verify one token and say why it is refused")
    check.add_argument("--api-url", help="your Hanko API URL (default: HANKO_API_URL, from the environment or ./.env)")
    check.add_argument("--audience", action="append", default=[], help="accepted aud (default: HANKO_AUDIENCE)")
    check.add_argument("--issuer", help="expected iss (default: HANKO_ISSUER)")
    check.add_argument("--leeway", type=float, default=30.0, help="clock skew allowed, in seconds")
    check.add_argument("--allow-http", action="store_true", help="as HANKO_ALLOW_HTTP=true")
    check.add_argument("token", nargs="*", help="the token; '-' or nothing reads it from standard input")
    return parser


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors never repeat what looks like a token."""

    def error(self, message: str) -> NoReturn:
        super().error(_JWT_LIKE.sub("<token>", _TOKEN_LIKE.sub("<token>", message)))


async def _verdict(settings: HankoSettings, token: str, claims: Any, out: _MaskedOutput) -> int:
    verifier = TokenVerifier(settings)
    try:
        user = await verifier.verify_token(token)
    except InvalidTokenError as error:
        out.say(f"verdict: refused ({error.reason})")
        # A token that does not parse fails somewhere (a cut payload at the signature): say which part broke.
        hint = token_shape_problem(token) or _hint(error.code, settings, claims if isinstance(claims, dict) else {})
        if hint:
            out.say(f"hint:    {hint}")
        return 1
    except UnavailableError:
        out.say(f"verdict: unknown: Hanko's keys could not be had from {settings.jwks_url}")
        out.say("hint:    check the URL and that this machine reaches it")
        return 3
    finally:
        await verifier.close()
    out.say(f"verdict: valid: user {user.id}, session {user.session_id}, expires {user.expires_at.isoformat()}")
    if not settings.audience:
        out.say(f"hint:    pin the audience in production: HANKO_AUDIENCE={_audiences(claims)}")
    return 0


def _hint(code: str, settings: HankoSettings, claims: dict[str, Any]) -> str | None:
    if code == "audience":
        return (
            f"the token's aud is {_audiences(claims) or 'missing'}; set HANKO_AUDIENCE (--audience) to it "
            "(Hanko Cloud puts the project's App URL there, self-hosted Hanko its WebAuthn relying party id)"
        )
    if code == "issuer":
        return f"the token's iss is {json.dumps(claims.get('iss'))}; HANKO_ISSUER (--issuer) must equal it"
    if code == "not_session":
        if claims.get("sub") == WEBHOOK_SUBJECT:
            return "this is a Hanko webhook token: it reports an event and never opens a session"
        return "Hanko session tokens carry a UUID sub and a UUID session_id"
    if code == "expired" and isinstance(claims.get("exp"), (int, float)):
        ago = int(time.time() - claims["exp"])
        moment = datetime.datetime.fromtimestamp(claims["exp"], tz=datetime.timezone.utc).isoformat()
        return f"it expired at {moment}, {ago} s ago; the frontend must get a new one from Hanko"
    if code == "unknown_key":
        return f"its kid is not among the keys at {settings.jwks_url}: is --api-url the project that issued it?"
    if code == "bad_signature":
        return "the token was changed, or signed by a key that is not Hanko's"
    return None


def _audiences(claims: Any) -> str:
    aud = claims.get("aud") if isinstance(claims, dict) else None
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return ",".join(str(value) for value in values)


def _unverified_parts(token: str) -> tuple[Any, Any]:
    """The header and claims as JSON, for showing only: nothing here decides anything."""
    parts = token.split(".")
    return _decoded(parts[0]), _decoded(parts[1] if len(parts) > 1 else "")


def _decoded(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, RecursionError):
        return "(not readable JSON)"


def _show(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n         ")
