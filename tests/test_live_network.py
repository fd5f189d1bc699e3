"""Live updates over real sockets: WebSocket and SSE on a server process, and fan-out between two
server processes on one PostgreSQL through Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from admitone.core.db import Database
from admitone.core.settings import Settings
from admitone.organizers import service as organizers
from tests.conftest import SECRET, _truncate
from tests.test_multiprocess import free_port, wait_ready

REDIS_URL = os.environ.get("ADMITONE_TEST_REDIS_URL")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "admitone", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def next_message(ws: Any, within: float = 3.0) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def wait_for_seat(ws: Any, seat_id: int, state: str, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"seat {seat_id} did not become {state} within {within}s"
        message = await next_message(ws, left)
        if message.get("seats", {}).get(str(seat_id)) == state:
            return message


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = spawn(
        ["demo", "--port", str(port)],
        {"ADMITONE_DATA_DIR": str(tmp_path), "ADMITONE_LOG_LEVEL": "warning"},
        tmp_path / "demo.log",
    )
    try:
        wait_ready(port, proc, timeout=60)
        yield port
    finally:
        stop(proc)


async def test_websocket_and_sse_on_a_running_server(demo_server: int) -> None:
    port = demo_server
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        seats = (await client.get("/api/v1/events/1/seats")).json()["seats"]
        a, b = seats[0]["id"], seats[1]["id"]
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/events/1/live") as ws:
            snap = await next_message(ws)
            assert snap["type"] == "snapshot" and snap["seats"] == {}
            assert len(snap["ticket_types"]) == 5
            started = time.monotonic()
            assert (await client.post("/api/v1/events/1/holds", json={"seat_ids": [a]})).status_code == 201
            change = await wait_for_seat(ws, a, "held", within=2.0)
            assert time.monotonic() - started < 1.0, "the change took more than a second to arrive"
            assert change["type"] == "changes" and change["seq"] > snap["seq"]
            last_seq = change["seq"]
        # Disconnected while another seat is taken; resuming delivers just what was missed.
        assert (await client.post("/api/v1/events/1/holds", json={"seat_ids": [b]})).status_code == 201
        await asyncio.sleep(0.5)
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/api/v1/events/1/live?last_seq={last_seq}"
        ) as ws:
            missed = await next_message(ws)
            assert missed["type"] == "changes" and missed["from_seq"] == last_seq + 1
            assert missed["seats"] == {str(b): "held"}
        async with client.stream("GET", "/api/v1/events/1/live/sse") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            first_id = await asyncio.wait_for(anext(lines), 5)
            data = await asyncio.wait_for(anext(lines), 5)
            assert first_id.startswith("id: ")
            snap = orjson.loads(data.removeprefix("data: "))
            assert snap["type"] == "snapshot" and snap["seats"] == {str(a): "held", str(b): "held"}
            assert int(first_id[4:]) == snap["seq"]


@pytest.mark.postgres
async def test_fan_out_between_two_processes_through_redis(pg_url: str, tmp_path: Path) -> None:
    if not REDIS_URL:
        pytest.skip("ADMITONE_TEST_REDIS_URL is not set")
    await _truncate(pg_url)
    db = Database(Settings(database_url=pg_url, secret_key=SECRET))
    async with db.write() as conn:
        key = (await organizers.create_organizer(conn, "Fan-out", dt.datetime.now(dt.UTC))).api_key
    await db.dispose()
    env = {
        "ADMITONE_DATABASE_URL": pg_url,
        "ADMITONE_DATA_DIR": str(tmp_path),
        "ADMITONE_SECRET_KEY": SECRET,
        "ADMITONE_REDIS_URL": REDIS_URL,
        "ADMITONE_LOG_LEVEL": "warning",
    }
    ports = [free_port(), free_port()]
    procs = [spawn(["serve", "--port", str(p), "--no-migrate"], env, tmp_path / f"s{p}.log") for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            await asyncio.to_thread(wait_ready, port, proc)
        auth = {"Authorization": f"Bearer {key}"}
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        async with httpx.AsyncClient(timeout=10) as client:
            venue = (
                await client.post(
                    f"{a}/api/v1/organizer/venues",
                    headers=auth,
                    json={
                        "name": "Hall",
                        "sections": [
                            {
                                "name": "S",
                                "rows": [
                                    {
                                        "label": "A",
                                        "seats": [
                                            {"number": n, "x": n, "y": 0, "category": "A"}
                                            for n in range(1, 11)
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                )
            ).json()
            event = (
                await client.post(
                    f"{a}/api/v1/organizer/events",
                    headers=auth,
                    json={
                        "name": "Fan-out",
                        "slug": "fan-out",
                        "venue_id": venue["id"],
                        "status": "on_sale",
                        "starts_at": "2030-01-01T20:00:00+00:00",
                    },
                )
            ).json()
            await client.post(
                f"{a}/api/v1/organizer/events/{event['id']}/ticket-types",
                headers=auth,
                json={"name": "Seat", "kind": "seated", "category": "A", "price_minor": 1000},
            )
            seats = (await client.get(f"{a}/api/v1/events/{event['id']}/seats")).json()["seats"]
            url = f"ws://127.0.0.1:{ports[1]}/api/v1/events/{event['id']}/live"
            async with websockets.connect(url) as ws:
                snap = await next_message(ws)
                assert snap["seats"] == {}
                started = time.monotonic()
                # Held through instance A, seen on a socket of instance B.
                hold = await client.post(
                    f"{a}/api/v1/events/{event['id']}/holds", json={"seat_ids": [seats[3]["id"]]}
                )
                assert hold.status_code == 201
                await wait_for_seat(ws, seats[3]["id"], "held", within=3.0)
                assert time.monotonic() - started < 1.5
                await client.delete(f"{b}/api/v1/holds/{hold.json()['id']}")
                await wait_for_seat(ws, seats[3]["id"], "free", within=3.0)
    finally:
        for proc in procs:
            stop(proc)
