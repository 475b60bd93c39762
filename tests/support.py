"""Helpers shared by the test modules."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiocache import SimpleMemoryCache

from hanko_tornado.cache import SealedCache
from hanko_tornado.keys import KeyStore, KeyStoreSeed
from hanko_tornado.metrics import NO_METRICS
from hanko_tornado.settings import HankoSettings


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line written while the block runs, at every level, tracebacks included."""
    collector = _Collector()
    collector.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    try:
        yield collector.lines
    finally:
        root.removeHandler(collector)
        root.setLevel(old_level)


def memory_cache() -> SealedCache:
    """A sealed cache in this process's memory, counting nothing: what a verifier without a shared cache has."""
    return SealedCache(SimpleMemoryCache(), None)


def key_store(settings: HankoSettings, seed: KeyStoreSeed | None = None) -> KeyStore:
    """A key store of its own, as a verifier without a shared cache or metrics makes one."""
    return KeyStore(settings, cache=memory_cache(), recorder=NO_METRICS, seed=seed)
