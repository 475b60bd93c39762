"""One process serving an application until it is told to stop, then stopping without losing a request."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Mapping

import tornado.web

from hanko_tornado.keys import KeyStore
from hanko_tornado.lifecycle import close, state_of, verifier_for
from hanko_tornado.runner.graceful import STOPPING, GracefulHTTPServer
from hanko_tornado.runner.keys_file import KeysFile
from hanko_tornado.runner.options import ServeOptions
from hanko_tornado.runner.supervisor import WorkerLink
from hanko_tornado.settings import HankoSettings
from hanko_tornado.tokens import TokenVerifier

__all__ = ["serve"]

log = logging.getLogger("server")

#: Seconds between two looks at whether the key set held is newer than the copy on disk.
_KEYS_FILE_SYNC_SECONDS = 1.0


async def serve(
    app: tornado.web.Application,
    sockets: list[socket.socket],
    where: str,
    options: ServeOptions,
    *,
    body_limits: Mapping[str, int] | None = None,
    link: WorkerLink | None = None,
    keys_file: KeysFile | None = None,
) -> None:
    """Serve ``app`` on ``sockets`` until SIGTERM, SIGINT or the end of the parent's lifeline, then close it.

    SIGTERM and the lifeline stop it as :mod:`~hanko_tornado.runner.graceful` says, ``shutdown_delay``
    first; SIGINT (Ctrl-C) skips the delay, and so does a second signal.  ``keys_file``, when given, is
    where the verifier's key store starts from (if the copy is usable) and the key set held is copied to.
    Once the requests are drained, :func:`hanko_tornado.close` closes everything the application's Hanko
    objects hold.
    """
    if keys_file is not None:
        _seed_verifier(app, keys_file)
    server = GracefulHTTPServer(
        app,
        max_header_size=options.max_header_size,
        max_body_size=options.max_body_size,
        body_limits=body_limits,
        idle_connection_timeout=options.idle_connection_timeout,
        body_timeout=options.body_timeout,
    )
    server.add_sockets(sockets)
    verifier = verifier_for(app)
    log.info("serving on %s (keys from %s)", where, verifier.settings.jwks_url)
    stop: asyncio.Future[bool] = asyncio.get_running_loop().create_future()  # True: wait out the delay
    hurry = asyncio.Event()
    _listen_for_stop(stop, hurry, link)
    status = verifier.key_store.status()
    if not status.usable or status.stale:  # a fresh seed is as good as a fetch: the fleet fetches once
        await verifier.key_store.refresh()
    syncing = asyncio.ensure_future(_sync_keys_file(verifier.key_store, keys_file)) if keys_file else None
    if link is not None:
        link.serving()
    delay = options.shutdown_delay if await stop else 0.0
    if link is not None:
        link.stopping()
    app.settings[STOPPING] = True
    log.info(
        "shutting down: /readyz answers 503; serving %g s more, then up to %g s in all for what is in flight "
        "(%d request(s) in flight)",
        delay,
        options.shutdown_grace,
        server.requests_in_flight,
    )
    unfinished = await server.drain(delay, options.shutdown_grace, hurry)
    if unfinished:
        log.warning(
            "%d request(s) still in flight after %g s: closing their connections", unfinished, options.shutdown_grace
        )
    if syncing is not None:
        syncing.cancel()
    await close(app)
    log.info("stopped")


def _listen_for_stop(stop: asyncio.Future[bool], hurry: asyncio.Event, link: WorkerLink | None) -> None:
    loop = asyncio.get_running_loop()

    def stopped(delay: bool) -> None:
        if stop.done():
            hurry.set()
        else:
            stop.set_result(delay)

    loop.add_signal_handler(signal.SIGTERM, stopped, True)
    loop.add_signal_handler(signal.SIGINT, stopped, False)
    if link is not None and link.lifeline is not None:
        lifeline = link.lifeline

        def parent_stopped() -> None:  # the pipe's end of file: the parent stopped or died
            loop.remove_reader(lifeline)
            stopped(True)

        loop.add_reader(lifeline, parent_stopped)


def _seed_verifier(app: tornado.web.Application, keys_file: KeysFile) -> None:
    """Give the application a verifier whose key store starts from the copy on disk, if it is usable."""
    settings = app.settings.get("hanko")
    state = state_of(app)
    if not isinstance(settings, HankoSettings) or "hanko_verifier" in app.settings or state.verifier is not None:
        return
    seed = keys_file.read()
    if seed is not None:
        state.verifier = TokenVerifier(settings, seed=seed)


async def _sync_keys_file(key_store: KeyStore, keys_file: KeysFile) -> None:
    while True:
        keys_file.write(key_store.seed().key_set)  # a disk problem is logged there; serving goes on
        await asyncio.sleep(_KEYS_FILE_SYNC_SECONDS)
