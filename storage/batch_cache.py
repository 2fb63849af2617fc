"""Reads remembered for the rest of one transaction, and forgotten as soon as they may be wrong.

The inbox handles a batch of events in one transaction; a few reads repeat for every event of it
(the rule thresholds set in chat, the sender's member row). A value remembered here lives in the
session (``Session.info``) and depends on the tables it was read from. It is forgotten

- when anything in the session writes one of those tables: an ORM flush of a row of it, or an
  INSERT, UPDATE or DELETE executed through the session (any other statement, e.g. raw text,
  forgets everything);
- when any transaction of the session, a savepoint included, is rolled back; and
- when the session's outermost transaction ends (commit or rollback).

So nothing remembered outlives the transaction that read it, and nothing survives a rollback —
a batch that is rolled back and run again reads afresh. Writes made past the session (through
``session.connection()``) are not seen: code that remembers a table here must not be written
that way (``storage.importer`` writes only customers through its connection).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql.dml import UpdateBase

_INFO_KEY = "pacebot.batch_cache"
MISSING: Any = object()  # what ``lookup`` returns for a value not remembered


def _entries(session: Session) -> dict[Hashable, tuple[frozenset[str], Any]]:
    entries: dict[Hashable, tuple[frozenset[str], Any]] | None = session.info.get(_INFO_KEY)
    if entries is None:
        entries = session.info[_INFO_KEY] = {}
    return entries


def lookup(session: AsyncSession, key: Hashable) -> Any:
    """The value remembered under ``key`` in this transaction, else ``MISSING``."""
    entries = session.sync_session.info.get(_INFO_KEY)
    if not entries:
        return MISSING
    found = entries.get(key)
    return MISSING if found is None else found[1]


def remember(session: AsyncSession, key: Hashable, tables: Iterable[str], value: Any) -> None:
    """Remember ``value`` under ``key`` until one of ``tables`` is written or the transaction ends."""
    _entries(session.sync_session)[key] = (frozenset(tables), value)


def forget(session: AsyncSession, key: Hashable) -> None:
    """Forget one value (a write not yet flushed makes it wrong)."""
    entries = session.sync_session.info.get(_INFO_KEY)
    if entries:
        entries.pop(key, None)


def _forget_tables(session: Session, tables: set[str] | None) -> None:
    entries = session.info.get(_INFO_KEY)
    if not entries:
        return
    if tables is None:
        entries.clear()
        return
    for key in [key for key, (depends, _) in entries.items() if depends & tables]:
        del entries[key]


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_select or not state.session.info.get(_INFO_KEY):
        return
    statement = state.statement
    table = statement.table if isinstance(statement, UpdateBase) else None
    _forget_tables(state.session, {table.name} if isinstance(table, Table) else None)


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    if not session.info.get(_INFO_KEY):
        return
    tables: set[str] = set()
    for instance in (*session.new, *session.dirty, *session.deleted):
        table = getattr(type(instance), "__table__", None)
        if isinstance(table, Table):
            tables.add(table.name)
        else:
            tables = set()
            _forget_tables(session, None)
            return
    if tables:
        _forget_tables(session, tables)


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, _transaction: SessionTransaction) -> None:
    _forget_tables(session, None)


@event.listens_for(Session, "after_transaction_end")
def _on_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _forget_tables(session, None)
