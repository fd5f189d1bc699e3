"""Two server processes on one PostgreSQL, and a process killed mid-sale: still no oversell."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from admitone.core.clock import ManualClock
from admitone.core.settings import Settings
from tests.conftest import SECRET, _truncate, base_settings
from tests.harness import Harness, small_venue
from tests.rawhttp import post_json
from tests.support import free_port

pytestmark = pytest.mark.postgres


def start_server(url: str, data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ADMITONE_DATABASE_URL": url,
        "ADMITONE_DATA_DIR": str(data),
        "ADMITONE_SECRET_KEY": SECRET,
        "ADMITONE_LOG_LEVEL": "warning",
    }
    log = open(data / f"server-{port}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "admitone", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server on {port} not ready after {timeout}s")


@pytest.fixture
def servers(pg_url: str, tmp_path: Path) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    procs: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(2):
            port = free_port()
            procs.append((port, start_server(pg_url, tmp_path, port)))
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture
async def pg_harness(pg_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    from admitone.core.app import create_app

    await _truncate(pg_url)
    settings = Settings(data_dir=tmp_path, database_url=pg_url, **base_settings())  # type: ignore[arg-type]
    app = create_app(settings, ManualClock())
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        yield Harness(app=app, client=client, clock=ManualClock(), state=app.state.admitone)


async def test_two_processes_share_one_inventory(
    pg_harness: Harness, servers: list[tuple[int, subprocess.Popen[bytes]]]
) -> None:
    h = pg_harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=300, max_per_order=3)
    seated = await h.seated_event(org, small_venue(rows=5, per_row=20))
    for port, proc in servers:
        await asyncio.to_thread(wait_ready, port, proc)
    rng = random.Random(11)
    jobs = []
    for i in range(1200):
        port = servers[i % 2][0]
        if i % 3 == 0:
            event_id, body = seated.event_id, {"seat_ids": rng.sample(seated.seat_ids[:40], 2)}
        else:
            event_id = ga.event_id
            body = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": rng.randint(1, 3)}]}
        jobs.append(post_json(port, f"/api/v1/events/{event_id}/holds", body))
    # 1,200 connections open at once, half to each process.
    results = await asyncio.gather(*jobs)
    assert {status for status, _ in results} <= {201, 409}
    ga_held = sum(
        line["quantity"]  # type: ignore[index]
        for status, body in results
        if status == 201 and body["event_id"] == ga.event_id
        for line in body["lines"]  # type: ignore[attr-defined]
    )
    assert ga_held == 300
    seats = [
        line["seat_id"]  # type: ignore[index]
        for status, body in results
        if status == 201 and body["event_id"] == seated.event_id
        for line in body["lines"]  # type: ignore[attr-defined]
    ]
    assert len(seats) == len(set(seats)) and len(seats) > 0
    await h.check_invariants(ga.event_id)
    await h.check_invariants(seated.event_id)


async def test_killed_process_loses_nothing_and_oversells_nothing(
    pg_harness: Harness, servers: list[tuple[int, subprocess.Popen[bytes]]]
) -> None:
    h = pg_harness
    org = await h.organizer()
    ga = await h.ga_event(org, capacity=200, max_per_order=2)
    for port, proc in servers:
        await asyncio.to_thread(wait_ready, port, proc)
    (port_a, proc_a), (port_b, _) = servers
    body = {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
    path = f"/api/v1/events/{ga.event_id}/holds"

    async def kill_soon() -> None:
        await asyncio.sleep(0.15)
        os.kill(proc_a.pid, signal.SIGKILL)

    first = await asyncio.gather(*(post_json(port_a, path, body) for _ in range(300)), kill_soon())
    results = [status for status, _ in first[:-1]]  # type: ignore[misc]
    survivors = [
        status for status, _ in await asyncio.gather(*(post_json(port_b, path, body) for _ in range(300)))
    ]
    assert proc_a.wait(10) == -signal.SIGKILL
    # Whatever process A committed before dying stays sold; B sells exactly what is left, and not one more.
    total = await h.scalar("SELECT count(*) FROM holds WHERE event_id = :e", e=ga.event_id)
    committed_by_a = total - survivors.count(201)
    assert total == 200
    assert await h.scalar("SELECT held FROM quotas WHERE id = :q", q=ga.quota_id) == 200
    # A answered only after committing; a kill between commit and answer leaves a hold nobody was told of.
    assert results.count(201) <= committed_by_a
    assert set(survivors) <= {201, 409} and survivors.count(409) == 300 - survivors.count(201)
    await h.check_invariants(ga.event_id)
