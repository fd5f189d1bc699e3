"""The live WebSocket on a real uvicorn server: the flush writes to every socket directly, a client that
stops reading is closed with 4008, bad parameters and unknown events are refused, shutdown says 1001."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from admitone.core.settings import Settings
from admitone.live.hub import CLOSE_TOO_SLOW, SocketSubscriber, text_frame
from tests.conftest import running
from tests.harness import Harness, small_venue
from tests.test_multiprocess import free_port


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Harness, str]]:
    """The app (coalescing left to the test, 8 messages of lag allowed) behind a real uvicorn server."""
    slow = settings.model_copy(update={"live_coalesce_ms": 10_000, "live_queue_size": 8})
    async with running(slow) as h:
        port = free_port()
        config = uvicorn.Config(
            h.app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
            ws_per_message_deflate=False,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.025)
        assert server.started, "uvicorn did not start within 5 s"
        try:
            yield h, f"ws://127.0.0.1:{port}/api/v1/events"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


async def recv(ws: Any, within: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def read_until_closed(ws: Any, at_most: int) -> None:
    for _ in range(at_most):
        await asyncio.wait_for(ws.recv(), 10)


async def publish(h: Harness, event_id: int) -> None:
    await h.state.relay.drain()
    h.state.hub.channels[event_id].flush()


def sockets_of(h: Harness, event_id: int) -> list[SocketSubscriber]:
    subs = h.state.hub.channels[event_id].subscribers
    return [s for s in subs if isinstance(s, SocketSubscriber)]


async def wait_until(condition: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_changes_reach_every_socket_without_a_task_per_socket(
    served: tuple[Harness, str],
) -> None:
    h, base = served
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=2, per_row=10))
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(websockets.connect(f"{base}/{ev.event_id}/live"))
            for _ in range(20)
        ]
        snaps = [await recv(ws) for ws in sockets]
        assert {s["type"] for s in snaps} == {"snapshot"}
        await wait_until(lambda: len(sockets_of(h, ev.event_id)) == 20)
        # Every subscriber is idle (no send in progress) and owns no task.
        assert all(s.backlog is None and s.task is None for s in sockets_of(h, ev.event_id))

        # uvicorn's websockets-sansio connections get the flush's one frame written to their transport.
        assert all(s.direct is not None for s in sockets_of(h, ev.event_id))
        direct_before = h.state.hub.direct_writes
        await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[0]]})
        await h.hold(ev.event_id, {"seat_ids": [ev.seat_ids[1]]})
        await publish(h, ev.event_id)
        # The flush wrote to every socket itself: no send is left in progress, no task was started.
        assert all(s.backlog is None and s.task is None for s in sockets_of(h, ev.event_id))
        assert h.state.hub.direct_writes - direct_before == 20
        changes = [await recv(ws) for ws in sockets]
        assert {orjson.dumps(c) for c in changes} == {orjson.dumps(changes[0])}, "same message for all"
        assert changes[0]["type"] == "changes" and changes[0]["from_seq"] == snaps[0]["seq"] + 1
        assert changes[0]["seats"] == {str(ev.seat_ids[0]): "held", str(ev.seat_ids[1]): "held"}

        # Resume from the snapshot's sequence on a new socket: exactly the missed change.
        async with websockets.connect(f"{base}/{ev.event_id}/live?last_seq={snaps[0]['seq']}") as again:
            missed = await recv(again)
            assert missed == changes[0]

    # Closed by the clients: no subscriber is left behind.
    await wait_until(lambda: not sockets_of(h, ev.event_id))


async def test_client_that_stops_reading_is_closed_with_4008(served: tuple[Harness, str]) -> None:
    h, base = served
    org = await h.organizer()
    ev = await h.seated_event(org, small_venue(rows=1, per_row=10))
    hub = h.state.hub
    # The stalled client keeps at most one message and stops reading the socket after that.
    async with (
        websockets.connect(f"{base}/{ev.event_id}/live", max_size=None, max_queue=1) as stalled,
        websockets.connect(f"{base}/{ev.event_id}/live", max_size=None) as reader,
    ):
        await recv(stalled)
        await recv(reader)
        await wait_until(lambda: len(sockets_of(h, ev.event_id)) == 2)
        channel = hub.channels[ev.event_id]
        big = "x" * (1 << 20)
        seq = channel.seq
        received = 0
        # 1 MiB messages until the stalled socket's buffers (kernel and transport) are full and 8 more
        # messages wait behind them. The reader keeps up and stays.
        for _ in range(64):
            seq += 1
            hub.offer_all(channel, seq, orjson.dumps({"type": "changes", "seq": seq, "pad": big}).decode())
            received += 1
            assert (await recv(reader))["seq"] == seq
            if hub.dropped:
                break
        assert hub.dropped == 1
        subs = sockets_of(h, ev.event_id)
        assert len(subs) == 1, "only the reader is still subscribed"
        # The stalled client, once it reads again, gets what was written before the drop, then 4008.
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(stalled, received + 2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_TOO_SLOW
        assert "last_seq" in closed.value.rcvd.reason


async def test_bad_parameters_unknown_event_and_shutdown(settings: Settings) -> None:
    slow = settings.model_copy(update={"live_coalesce_ms": 10_000})
    async with running(slow) as h:
        org = await h.organizer()
        ev = await h.seated_event(org, small_venue(rows=1, per_row=5))
        port = free_port()
        config = uvicorn.Config(h.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(200):
                if server.started:
                    break
                await asyncio.sleep(0.025)
            base = f"ws://127.0.0.1:{port}/api/v1/events"
            for bad in (
                f"{ev.event_id}/live?last_seq=-1",
                f"{ev.event_id}/live?last_seq=x",
                "0/live",
                "abc/live",
            ):
                with pytest.raises(InvalidStatus) as refused:
                    async with websockets.connect(f"{base}/{bad}"):
                        pass
                assert refused.value.response.status_code == 403, bad
            async with websockets.connect(f"{base}/999999/live") as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404

            async with websockets.connect(f"{base}/{ev.event_id}/live") as ws:
                assert (await recv(ws))["type"] == "snapshot"
                await h.state.hub.stop()  # what the lifespan does when the server shuts down
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 1 << 20])
def test_text_frame_is_the_frame_websockets_would_send(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
