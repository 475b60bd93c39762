"""Log out everywhere, and revoke one session: at Hanko, and in every process of this service at once.

Both end the sessions the way a ``session.delete`` webhook does
(``verifier.end``): refused in this process at once and, with a
shared Redis cache, in every process within a second, so the logout holds
even when Hanko's webhook never arrives (switched off, lost, late).  They end
the sessions here before asking Hanko, so a token is refused from the first
moment, even when Hanko fails half-way.
"""

from __future__ import annotations

import logging
import time

from hanko_tornado.admin.client import HankoAdminClient
from hanko_tornado.admin.errors import AdminNotFoundError, HankoAdminError
from hanko_tornado.admin.models import AdminSession, is_uuid
from hanko_tornado.tokens import TokenVerifier

__all__ = ["log_out_everywhere", "revoke_session"]

log = logging.getLogger("hanko_tornado")


async def log_out_everywhere(
    client: HankoAdminClient, verifier: TokenVerifier, user_id: str, *, also: str | None = None
) -> int:
    """End every active session of ``user_id``; how many Hanko listed.

    The user can log in again at once: each session is ended, not the user.

    :param also: a session id to end too, listed or not (the caller's own, from its token).
    :raises HankoAdminError: Hanko could not list or delete the sessions; every session it listed, and
        ``also``, is refused in this service all the same.
    """
    sessions = await client.list_sessions(user_id)
    await _end_here(verifier, sessions, also)
    failure: HankoAdminError | None = None
    for session in sessions:
        try:
            await client.delete_session(user_id, session.id)
        except AdminNotFoundError:
            pass  # ended meanwhile (logout, expiry): what was asked for
        except HankoAdminError as error:
            failure = failure or error
    log.info("logged user %s out everywhere: %d session(s)", user_id, len(sessions))
    if failure is not None:
        raise failure
    return len(sessions)


async def revoke_session(client: HankoAdminClient, verifier: TokenVerifier, user_id: str, session_id: str) -> None:
    """End one session of ``user_id`` here and everywhere, then at Hanko (which sends ``session.delete.admin.revoke``).

    :raises AdminNotFoundError: Hanko has no such session of this user (nothing is ended then).
    :raises HankoAdminError: Hanko could not delete it; it is refused in this service all the same.
    """
    if not is_uuid(session_id) or not is_uuid(user_id):
        raise ValueError("user_id and session_id must be UUIDs")
    sessions = {session.id: session for session in await client.list_sessions(user_id)}
    session = sessions.get(session_id.lower())
    if session is None:
        raise AdminNotFoundError("DELETE /users/:user_id/sessions/:session_id: no such active session", 404)
    await _end_here(verifier, (session,), None)
    await client.delete_session(user_id, session_id)


async def _end_here(verifier: TokenVerifier, sessions: tuple[AdminSession, ...], also: str | None) -> None:
    latest = time.time() + verifier.settings.max_session_lifetime
    for session in sessions:
        until = session.expires_at.timestamp() if session.expires_at is not None else latest
        await verifier.end("session", session.id, min(until, latest))
    if also is not None and also not in {session.id for session in sessions}:
        await verifier.end("session", also, latest)
