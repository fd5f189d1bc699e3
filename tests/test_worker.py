"""The event stream in ``admitone worker`` processes: servers with ADMITONE_STREAM_WORKER leave it alone,
a worker drains it (commits of other processes included), dashboards still update, and the command starts
and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from pydantic import ValidationError

from admitone.core.settings import Settings
from admitone.core.worker import Worker
from admitone.outbox.consumers import position
from tests.conftest import SECRET, running
from tests.harness import Harness
from tests.support import free_port, serving
from tests.test_analytics import receive
from tests.test_cli import ADMITONE, cli_env

ONE = 2  # tickets per sale in these tests


def tickets(ticket_type_id: int, quantity: int = ONE) -> dict[str, Any]:
    return {"tickets": [{"ticket_type_id": ticket_type_id, "quantity": quantity}]}


@pytest.fixture
async def split(settings: Settings) -> Settings:
    """``settings`` for a server that leaves the stream to workers (PostgreSQL only)."""
    if settings.is_sqlite:
        pytest.skip("stream workers need PostgreSQL")
    return settings.model_copy(update={"stream_worker": True, "stream_poll_ms": 50})


@pytest.fixture
async def split_stream(stream_settings: Settings) -> Settings:
    """``split`` on either bus of the event stream: in process, or Kafka (``stream_settings``)."""
    if stream_settings.is_sqlite:
        pytest.skip("stream workers need PostgreSQL")
    return stream_settings.model_copy(update={"stream_worker": True, "stream_poll_ms": 50})


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {within} s")
        await asyncio.sleep(0.05)


async def unstreamed(h: Harness) -> int:
    return int(await h.backlog("stream"))


async def drained(h: Harness, event_id: int) -> bool:
    """The worker has streamed every domain event and the analytics consumer applied all of the event's."""
    last = await h.scalar("SELECT last_seq FROM event_streams WHERE event_id = :e", e=event_id)
    return await unstreamed(h) == 0 and await position(h.state.db, "analytics", "event", event_id) == last


def test_stream_worker_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, secret_key=SECRET, stream_worker=True)
    assert "ADMITONE_STREAM_WORKER needs PostgreSQL" in str(refused.value)


async def test_the_worker_runs_the_stream_and_the_server_does_not(split_stream: Settings) -> None:
    split = split_stream
    async with running(split) as h:
        assert h.state.stream_relay is None and h.state.consumers == []
        org = await h.organizer()
        ga = await h.ga_event(org)
        order = await h.sell(ga.event_id, tickets(ga.ticket_type_id))
        await h.state.relay.drain()
        # The live lane is the server's: done. The stream lane is left to the workers.
        assert await h.backlog("live") == 0
        waiting = await unstreamed(h)
        assert waiting > 0
        await asyncio.sleep(0.5)
        assert await unstreamed(h) == waiting
        assert await position(h.state.db, "analytics", "event", ga.event_id) == 0
        assert await h.scalar("SELECT count(*) FROM mail_jobs") == 0

        worker = Worker(split)
        await worker.start()
        try:
            await eventually(lambda: drained(h, ga.event_id))
            summary = await h.ok("GET", f"/api/v1/organizer/events/{ga.event_id}/analytics", headers=org)
            assert summary["totals"]["tickets_sold"] == ONE
            jobs = await h.rows("SELECT order_id FROM mail_jobs")
            assert [r[0] for r in jobs] == [order["id"]]
            # A commit made after the worker started reaches it too, though no one tells it: it polls.
            again = await h.hold(ga.event_id, tickets(ga.ticket_type_id, 1))
            assert again.status_code == 201
            await eventually(lambda: drained(h, ga.event_id), within=5)
        finally:
            await worker.stop()


@pytest.fixture
async def served_split(split: Settings) -> AsyncIterator[tuple[Harness, str]]:
    async with running(split) as h, serving(h.app, free_port(), lifespan=False) as base:
        yield h, base.replace("http://", "ws://") + "/api/v1"


async def test_dashboards_update_when_a_worker_applies_the_sale(served_split: tuple[Harness, str]) -> None:
    # No Redis here: the server learns from the analytics consumer's positions that the numbers moved.
    h, base = served_split
    org = await h.organizer()
    key = org["Authorization"].removeprefix("Bearer ")
    ga = await h.ga_event(org)
    worker = Worker(h.state.settings)
    await worker.start()
    try:
        async with websockets.connect(f"{base}/organizer/events/{ga.event_id}/analytics/live") as ws:
            await ws.send(orjson.dumps({"type": "auth", "api_key": key}).decode())
            hello = await receive(ws, 5)
            assert hello["summary"]["totals"]["tickets_sold"] == 0
            await h.sell(ga.event_id, tickets(ga.ticket_type_id))
            committed = time.monotonic()
            while True:
                message = await receive(ws, max(0.01, committed + 10 - time.monotonic()))
                if message["summary"]["totals"]["tickets_sold"] == ONE:
                    break
            lag = time.monotonic() - committed
            assert lag < 3.0, f"the dashboard got the sale {lag:.2f} s after it committed"
    finally:
        await worker.stop()


async def test_admitone_worker_command_drains_and_stops_on_sigterm(split: Settings, tmp_path: Path) -> None:
    async with running(split) as h:
        org = await h.organizer()
        ga = await h.ga_event(org)
        await h.sell(ga.event_id, tickets(ga.ticket_type_id))
        assert await unstreamed(h) > 0
        env = cli_env(
            tmp_path / "worker-data",
            ADMITONE_DATABASE_URL=split.resolved_database_url,
            ADMITONE_SECRET_KEY=SECRET,
            ADMITONE_STREAM_WORKER="true",
            ADMITONE_STREAM_POLL_MS="50",
        )
        out = tmp_path / "worker.out"
        with out.open("w") as stdout:
            process = await asyncio.create_subprocess_exec(
                ADMITONE, "worker", env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            await eventually(lambda: drained(h, ga.event_id), within=60)
            assert process.returncode is None, out.read_text()
            os.killpg(process.pid, signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await asyncio.wait_for(process.wait(), 10)
        printed = out.read_text()
        assert code == 0, printed
        assert "stream worker started" in printed and "Traceback" not in printed


def test_admitone_worker_refuses_sqlite(tmp_path: Path) -> None:
    result = subprocess.run(
        [ADMITONE, "worker"],
        env=cli_env(tmp_path / "data", ADMITONE_STREAM_WORKER="true"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "ADMITONE_STREAM_WORKER needs PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
