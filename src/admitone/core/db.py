"""Engines, the transaction owner and the few places where SQLite and PostgreSQL differ.

Write transactions go through :meth:`Database.write`; reads through :meth:`Database.read`. On SQLite the
write side is one connection that opens ``BEGIN IMMEDIATE`` transactions, so writers queue in asyncio
instead of spinning on ``SQLITE_BUSY``, and readers use their own small pool (WAL lets them read while a
write is in progress). On PostgreSQL both sides share one pool.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from admitone.core.settings import Settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)
log = logging.getLogger(__name__)


# Set in a connection's ``info`` by a transaction that wrote to the outbox (``outbox/repository.py``).
OUTBOX_WRITTEN = "admitone.outbox_written"
# The outbox rows such a transaction wrote, in order; handed to ``Database.outbox_listeners`` on commit.
OUTBOX_ROWS = "admitone.outbox_rows"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in Python, on both databases (SQLite has no time zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a timezone-aware one is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def json_rows(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> str:
    """PostgreSQL: ``rows`` (dicts with the same keys) as the JSON document that :func:`insert_from_document`
    and :func:`insert_many_statement` unpack. Refuses naive datetimes for timezone-aware columns."""
    for name in rows[0]:
        if isinstance(table.c[name].type, UTCDateTime) and any(
            row[name] is not None and row[name].tzinfo is None for row in rows
        ):
            raise ValueError(
                f"naive datetime given for {table.name}.{name}, where a timezone-aware one is required"
            )
    return _json_dumps(rows)


def _insert_records(table: sa.Table, names: Sequence[str], document: sa.BindParameter[Any]) -> sa.Insert:
    """PostgreSQL: ``INSERT INTO table (names) SELECT ... FROM json_to_recordset(document)``, the document's
    records unpacked into typed columns."""
    columns = [sa.column(name, table.c[name].type) for name in names]
    records = (
        sa.func.json_to_recordset(sa.cast(document, postgresql.JSON))
        .table_valued(*columns)
        .render_derived(with_types=True)
    )
    return sa.insert(table).from_select(list(names), sa.select(*(records.c[name] for name in names)))


async def insert_many(conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Inserts ``rows`` (dicts with the same keys) in the caller's transaction.

    On PostgreSQL this is one ``INSERT ... SELECT ... FROM json_to_recordset($1)`` whose one parameter is
    all the rows as a JSON document (orjson). The driver's executemany would run the statement once per
    row: at a few hundred rows per hold batch that cost the server most of the batch's time
    (``docs/benchmarks.md``); one array parameter per column made the driver inspect every value in
    Python, twice the CPU of one document. SQLite, whose statements run in-process, keeps executemany.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) == 1:
        await conn.execute(sa.insert(table), list(rows))
        return
    await conn.execute(insert_many_statement(table, rows))


def insert_many_statement(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.Insert:
    """PostgreSQL: ``rows`` as one ``INSERT ... SELECT`` from a JSON document (see :func:`insert_many`)."""
    return _insert_records(table, list(rows[0]), sa.bindparam(None, json_rows(table, rows), type_=sa.Text))


def insert_from_document(table: sa.Table, names: Sequence[str], param: str) -> sa.Insert:
    """PostgreSQL: like :func:`insert_many_statement`, with the document (:func:`json_rows`) given as the
    named parameter ``param`` at execution. A statement built once and executed many times is compiled
    once and leaves no expression objects behind for the garbage collector: SQLAlchemy constructs hold
    reference cycles, and a hold batch building its statement anew left thousands of them per second,
    collected in pauses of tens of milliseconds (``docs/benchmarks.md``)."""
    return _insert_records(table, names, sa.bindparam(param, type_=sa.Text))


def unnested_arrays(name: str, **columns: tuple[sa.types.TypeEngine[Any], str]) -> sa.Subquery:
    """PostgreSQL: a derived table of parallel arrays, each column the named parameter given for it."""
    selected = []
    for column, (type_, param) in columns.items():
        array_type = postgresql.ARRAY(type_)
        array = sa.cast(sa.bindparam(param, type_=array_type), array_type)
        selected.append(sa.func.unnest(array).label(column))
    return sa.select(*selected).subquery(name)


def together(writes: Sequence[sa.UpdateBase], final: sa.Select[Any]) -> sa.Select[Any]:
    """PostgreSQL: ``writes`` and ``final`` as one statement, one round trip to the server.

    The writes become data-modifying ``WITH`` clauses of ``final``, which may select from them (their
    ``RETURNING`` columns) to check what they did. PostgreSQL runs them all on one snapshot, so a write
    cannot see another's rows; constraints, foreign keys included, are checked on the statement's result.
    Under load every round trip waits for the event loop, so a batch that holds a lock sends as few as it
    can (``docs/benchmarks.md``).
    """
    statement = final
    for index, write in enumerate(writes):
        statement = statement.add_cte(write.cte(f"w{index}"))
    return statement


class Database:
    """Owns the engines of one process; built in the app lifespan and closed with it."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        # Called after every committed write that added domain events to the outbox (the outbox relays
        # wake up on it). Writes without new events, such as a relay marking its batch, call none: two
        # relays would otherwise wake each other forever.
        self.commit_listeners: list[Callable[[], None]] = []
        # Called after such a commit with the outbox rows it wrote (the live hub of this process applies
        # them at once; the live relay still publishes every row, to every process).
        self.outbox_listeners: list[Callable[[Sequence[Mapping[str, Any]]], None]] = []
        if self.dialect == "sqlite":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.write_engine = self._sqlite_engine(settings, writer=True)
            self.read_engine = self._sqlite_engine(settings, writer=False)
        else:
            self.write_engine = create_async_engine(
                self.url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_pool_size,
                pool_pre_ping=False,
                connect_args={"server_settings": {"application_name": "admitone"}},
                json_serializer=_json_dumps,
            )
            self.read_engine = self.write_engine

    def _sqlite_engine(self, settings: Settings, *, writer: bool) -> AsyncEngine:
        engine = create_async_engine(
            self.url,
            pool_size=1 if writer else 4,
            max_overflow=0,
            pool_timeout=120,
            connect_args={"timeout": 30},
            json_serializer=_json_dumps,
        )
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide where transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            # WAL is a property of the file (``migrate`` sets it). Switching needs an exclusive lock that
            # SQLite does not wait for when another new connection is switching at the same moment, so
            # only the writer switches, and only a file that is not in WAL yet.
            cursor.execute("PRAGMA journal_mode")
            (mode,) = cursor.fetchone()
            if writer and str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: commits when the block ends, rolls back when it raises."""
        async with self.write_engine.begin() as conn:
            conn.info.pop(OUTBOX_WRITTEN, None)
            conn.info.pop(OUTBOX_ROWS, None)
            yield conn
            added = conn.info.pop(OUTBOX_WRITTEN, False)
            rows: list[Mapping[str, Any]] = conn.info.pop(OUTBOX_ROWS, [])
        if added:
            for listener in self.commit_listeners:
                listener()
        if rows:
            for outbox_listener in self.outbox_listeners:
                try:
                    outbox_listener(rows)
                except Exception:  # the commit stands; the relay delivers the rows anyway
                    log.exception("an outbox listener failed after a commit")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction whose statements all see the same committed state."""
        async with self.read_engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    def insert(self, table: sa.Table) -> Any:
        """A dialect ``INSERT`` that knows ``on_conflict_do_nothing``."""
        return sqlite.insert(table) if self.dialect == "sqlite" else postgresql.insert(table)

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
