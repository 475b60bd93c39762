"""TEMPORARY (deleted once the lower modules take their parts by constructor): the contract, over today's modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hanko_tornado import cache as _cache
from hanko_tornado import keys as _keys
from hanko_tornado import revocations as _revocations
from hanko_tornado import sessions as _sessions
from hanko_tornado.metrics import Recorder
from hanko_tornado.settings import HankoSettings


class SealedCache(_cache.SealedCache):
    def __init__(self, cache: Any, secret: str | None, *, recorder: Recorder) -> None:
        super().__init__(cache, secret)
        self.metrics = recorder


class KeyStore(_keys.KeyStore):
    def __init__(
        self, settings: HankoSettings, *, cache: SealedCache, recorder: Recorder, seed: _keys.KeyStoreSeed | None = None
    ) -> None:
        super().__init__(settings, seed=seed)
        self._cache, self.metrics = cache, recorder


class _Holder:
    def __init__(self, cache: SealedCache) -> None:
        self.cache = cache

    def get_cache(self) -> SealedCache:
        return self.cache


class SessionChecker(_sessions.SessionChecker):
    def __init__(self, settings: HankoSettings, *, cache: SealedCache, recorder: Recorder) -> None:
        super().__init__(settings, _Holder(cache))  # type: ignore[arg-type]
        self.metrics = recorder


class Revocations(_revocations.Revocations):
    def __init__(
        self,
        settings: HankoSettings,
        *,
        cache: SealedCache,
        forget: Callable[[], None],
        ended: _revocations.EndedSessions | None = None,
    ) -> None:
        super().__init__(settings, lambda: cache, forget, ended=ended)


def watch(recorder: Recorder, owner: Any, **_: Any) -> None:
    recorder.watch(owner)
