"""One compiled-SQL cache for the whole test session, instead of one per engine.

SQLAlchemy compiles each distinct statement once per engine and keeps the result in that engine's
cache, keyed by the engine's dialect object. A service has one engine and compiles its statements
once; the tests make a fresh engine (a fresh database) for almost every test, so every test
compiled the same few dozen statements again — about a fifth of the suite's time.

``install()`` (called by ``tests/conftest.py``) wraps the engine factory that ``storage.db.create_engine``
calls: a new engine gets the dialect object and the compiled cache of an earlier engine of the same
kind (dialect class and driver) once that dialect has connected and initialised itself. What is
cached is SQL text compiled from a statement's structure for that dialect; parameters, connections,
pools, transactions and data stay per engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import LRUCache

from storage import db

_create_async_engine = db.create_async_engine
_shared: dict[tuple[type[Dialect], str], tuple[Dialect, LRUCache[Any, Any]]] = {}
_candidates: dict[tuple[type[Dialect], str], tuple[Dialect, LRUCache[Any, Any]]] = {}


def install() -> None:
    db.create_async_engine = create_async_engine  # type: ignore[assignment]


def create_async_engine(*args: Any, **kwargs: Any) -> AsyncEngine:
    engine = _create_async_engine(*args, **kwargs)
    sync = engine.sync_engine
    key = (type(sync.dialect), sync.dialect.driver)
    shared = _shared.get(key)
    if shared is None:
        candidate = _candidates.get(key)
        # A dialect is shared once it has initialised itself on a first connection (server version,
        # capabilities); until then each engine keeps its own and the latest one is the candidate.
        if candidate is not None and candidate[0].default_schema_name is not None:
            shared = _shared[key] = (candidate[0], LRUCache(5000))
        else:
            _candidates[key] = (sync.dialect, sync._compiled_cache)  # type: ignore[assignment]
            return engine
    dialect, cache = shared
    sync.dialect = dialect
    sync.pool._dialect = dialect
    sync._compiled_cache = cache
    return engine
