"""Test harness: every test that takes ``harness`` runs on SQLite, and on PostgreSQL when
``ADMITONE_TEST_POSTGRES_URL`` names a server (an admin URL; a fresh database is made there)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from admitone.core.clock import ManualClock
from admitone.core.migrate import migrate
from admitone.core.settings import Settings
from admitone.outbox.consumers import StreamConsumer
from tests.harness import Harness

T = TypeVar("T")
PG_ADMIN_URL = os.environ.get("ADMITONE_TEST_POSTGRES_URL")
SECRET = "test-secret-" + "x" * 40
BACKENDS = ["sqlite"] + (["postgres"] if PG_ADMIN_URL else [])
KAFKA_BOOTSTRAP = os.environ.get("ADMITONE_TEST_KAFKA_BOOTSTRAP")
BUSES = ["inprocess", "kafka"]


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Runs blocking setup off the event loop (session fixtures may be first asked for inside one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def base_settings(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "secret_key": SECRET,
        "sweep_interval_seconds": 3600,
        "hold_ttl_seconds": 600,
        "order_ttl_seconds": 900,
        "public_url": "http://test",
    }
    values.update(overrides)
    return values


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("template")
    in_thread(migrate, Settings(data_dir=data, secret_key=SECRET))
    return data / "admitone.db"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not PG_ADMIN_URL:
        pytest.skip("ADMITONE_TEST_POSTGRES_URL is not set")
    name = f"admitone_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _asyncpg_dsn(PG_ADMIN_URL)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    in_thread(asyncio.run, run(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    in_thread(migrate, Settings(database_url=url, secret_key=SECRET))
    yield url
    in_thread(asyncio.run, run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        names = ", ".join(f'"{t["tablename"]}"' for t in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, data / "admitone.db")
        return Settings(data_dir=data, **base_settings())  # type: ignore[arg-type]
    url: str = request.getfixturevalue("pg_url")
    await _truncate(url)
    return Settings(data_dir=data, database_url=url, **base_settings())  # type: ignore[arg-type]


@asynccontextmanager
async def running(
    settings: Settings, clock: ManualClock | None = None, consumers: Sequence[StreamConsumer] = ()
) -> AsyncIterator[Harness]:
    """An app with its lifespan running and a client that calls it in process."""
    from admitone.core.app import create_app

    clock = clock or ManualClock()
    app = create_app(settings, clock, self_transport=True, extra_consumers=consumers)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield Harness(app=app, client=client, clock=clock, state=app.state.admitone)


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async with running(settings) as h:
        yield h


def kafka_settings(settings: Settings, bootstrap: str, partitions: int = 3) -> Settings:
    """``settings`` with the Kafka bus on a topic and consumer groups of its own."""
    unique = uuid.uuid4().hex[:10]
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": bootstrap,
            "kafka_topic": f"admitone.test.{unique}",
            "kafka_partitions": partitions,
            "kafka_group_prefix": f"test-{unique}",
            # Joins and takeovers on the test broker take about a second instead of five.
            "kafka_session_timeout_ms": 3000,
        }
    )


@pytest.fixture(params=BUSES)
async def stream_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """``settings`` for the bus of the event stream: ``inprocess`` (embedded) or ``kafka`` (a real broker at
    ``ADMITONE_TEST_KAFKA_BOOTSTRAP``, a fresh topic and fresh consumer groups per test)."""
    if request.param == "inprocess":
        return settings
    if not KAFKA_BOOTSTRAP:
        pytest.skip("ADMITONE_TEST_KAFKA_BOOTSTRAP is not set")
    return kafka_settings(settings, KAFKA_BOOTSTRAP)


@pytest.fixture
async def stream_harness(stream_settings: Settings) -> AsyncIterator[Harness]:
    """Like ``harness``, on each bus of the event stream; ``await h.settle()`` waits for the consumers."""
    async with running(stream_settings) as h:
        yield h


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium for the browser tests (skipped where Debian's chromium is not installed)."""
    from tests.support import CHROMIUM, NO_CHROMIUM, chromium

    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    async with chromium() as running:
        yield running
