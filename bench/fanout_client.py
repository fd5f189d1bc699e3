"""One client process of bench/fanout.py: many WebSocket subscribers of one event's live stream.

    .venv/bin/python bench/fanout_client.py --url ws://127.0.0.1:PORT/api/v1/events/ID/live --count 2500 \
        --out results.npz [--batch 100] [--compression deflate|none] [--max-seconds 600]

Connects ``--count`` clients in batches of ``--batch`` (each batch waits for every snapshot before the
next one starts, so the server's accept backlog is never flooded), then prints ``ready <connected>
<failed>`` on stdout. Every client reads every message and records its receive time (``time.time()``,
taken as soon as ``recv`` returns). On ``stop`` on stdin (or after ``--max-seconds``) it writes:

* ``<out>``: numpy arrays ``seq`` and ``t`` (one row per ``changes`` message received by one client:
  the message's sequence number and its receive time) and ``client`` (which client received it);
* ``<out>.json``: for each sequence number the seat ids the message turned ``held``, counts of
  connections, messages, bytes, close codes and errors.

All clients of a process receive the same bytes for the same sequence number (the server serializes a
batch once), so a message is parsed once per process; every later copy is compared byte for byte with
the first and parsed again only if it differs (counted as ``mismatched``; expected 0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SEQ_MARK = b',"seq":'
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's handshake constant


class Recorder:
    def __init__(self) -> None:
        self.seq = array("q")
        self.t = array("d")
        self.client = array("i")
        self.first: dict[int, bytes] = {}  # seq -> the message's bytes, as first received
        self.held: dict[int, list[int]] = {}  # seq -> seat ids the message turned held
        self.snapshots = 0
        self.messages = 0
        self.bytes = 0
        self.mismatched = 0
        self.recording = True

    def record(self, client: int, data: bytes, t: float) -> None:
        self.messages += 1
        self.bytes += len(data)
        at = data.find(SEQ_MARK, 0, 200)
        if at < 0 or not data.startswith(b'{"type":"changes"'):
            self.snapshots += 1
            return
        end = data.find(b",", at + len(SEQ_MARK))
        seq = int(data[at + len(SEQ_MARK) : end])
        first = self.first.get(seq)
        if first is None:
            self.first[seq] = data
            self._parse(seq, data)
        elif first != data:
            self.mismatched += 1
            self._parse(seq, data)
        if self.recording:
            self.seq.append(seq)
            self.t.append(t)
            self.client.append(client)

    def _parse(self, seq: int, data: bytes) -> None:
        message: dict[str, Any] = orjson.loads(data)
        seats = [int(k) for k, v in message.get("seats", {}).items() if v == "held"]
        self.held[seq] = sorted(set(self.held.get(seq, [])) | set(seats))


class RawClient(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455) for ``--client raw``: the handshake, then unmasked server
    frames parsed from each chunk the socket delivers; pings answered, a close frame recorded and
    answered. The receive time is taken once per chunk (every frame of a chunk arrived together). Far
    cheaper per message than a full client library, so that on a shared 2-core machine the load clients,
    not the server, do not set the latency. No extensions (``none`` compression only)."""

    def __init__(self, rec: Recorder, index: int, host: str, path: str, ready: asyncio.Future[bool]) -> None:
        self.rec = rec
        self.index = index
        self.ready = ready
        self.key = base64.b64encode(os.urandom(16))
        self.request = (
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + self.key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)

    def _send(self, opcode: int, payload: bytes) -> None:
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def data_received(self, data: bytes) -> None:
        t = time.time()
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).lower()
            if not head.startswith(b"http/1.1 101") or b"sec-websocket-accept: " + accept not in head:
                self._finish("handshake-refused")
                return
            del buf[: end + 4]
            self.upgraded = True
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            at = pos + 2
            if n == 126:
                if size - at < 2:
                    break
                n = int.from_bytes(buf[at : at + 2], "big")
                at += 2
            elif n == 127:
                if size - at < 8:
                    break
                n = int.from_bytes(buf[at : at + 8], "big")
                at += 8
            if size - at < n:
                break
            payload = bytes(buf[at : at + n])
            pos = at + n
            opcode = b0 & 0x0F
            if opcode == 1:
                self.rec.record(self.index, payload, t)
                if not self.ready.done():
                    self.ready.set_result(True)
            elif opcode == 9:
                self._send(0xA, payload)
            elif opcode == 8:
                code = str(int.from_bytes(payload[:2], "big")) if len(payload) >= 2 else "no-status"
                self._send(0x8, payload[:2])
                self._finish(code)
                return
        del buf[:pos]

    def _finish(self, how: str) -> None:
        if not self.closed.done():
            self.closed.set_result(how)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result("no-close-frame")
        if not self.ready.done():
            self.ready.set_result(False)


async def run(args: argparse.Namespace) -> None:
    rec = Recorder()
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    open_now = 0
    stop = asyncio.Event()
    compression = None if args.compression == "none" else "deflate"

    url = urlsplit(args.url)

    def connect_failed(exc: Exception, ready: asyncio.Future[bool]) -> None:
        errors[f"connect:{type(exc).__name__}"] += 1
        if not ready.done():
            ready.set_result(False)

    async def one_raw(index: int, ready: asyncio.Future[bool]) -> None:
        nonlocal open_now
        loop = asyncio.get_running_loop()
        path = url.path + (f"?{url.query}" if url.query else "")
        try:
            _, client = await asyncio.wait_for(
                loop.create_connection(
                    lambda: RawClient(rec, index, url.netloc, path, ready), url.hostname, url.port
                ),
                60,
            )
        except Exception as exc:
            connect_failed(exc, ready)
            return
        open_now += 1
        try:
            how = await client.closed
            if how == "handshake-refused":
                errors["connect:handshake"] += 1
            else:
                closes[how] += 1
        finally:
            open_now -= 1
            if not ready.done():
                ready.set_result(False)

    async def one(index: int, ready: asyncio.Future[bool]) -> None:
        nonlocal open_now
        if args.client == "raw":
            await one_raw(index, ready)
            return
        try:
            ws = await connect(
                args.url,
                compression=compression,
                proxy=None,  # straight to 127.0.0.1, whatever the environment says
                ping_interval=None,  # like a browser: the server pings, the client only answers
                max_size=None,
                open_timeout=60,
                close_timeout=1,
            )
        except Exception as exc:
            connect_failed(exc, ready)
            return
        open_now += 1
        try:
            while True:
                data = await ws.recv(decode=False)
                t = time.time()
                rec.record(index, data, t)
                if not ready.done():
                    ready.set_result(True)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            closes[str(rcvd.code) if rcvd is not None else "no-close-frame"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors[f"recv:{type(exc).__name__}"] += 1
        finally:
            open_now -= 1
            if not ready.done():
                ready.set_result(False)

    tasks: list[asyncio.Task[None]] = []
    connected = failed = 0
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    for first in range(0, args.count, args.batch):
        futures = []
        for index in range(first, min(first + args.batch, args.count)):
            fut: asyncio.Future[bool] = loop.create_future()
            futures.append(fut)
            tasks.append(asyncio.create_task(one(args.base_index + index, fut)))
        try:
            done = await asyncio.wait_for(asyncio.gather(*futures), 120)
        except TimeoutError:
            done = [f.done() and f.result() for f in futures]
        connected += sum(1 for ok in done if ok)
        failed += sum(1 for ok in done if not ok)
        if time.monotonic() - started > args.max_seconds / 2:
            break
    connect_seconds = time.monotonic() - started
    print(f"ready {connected} {failed} {connect_seconds:.2f}", flush=True)

    async def read_stdin() -> None:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "stop":
                stop.set()
                return

    stdin_task = asyncio.create_task(read_stdin())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(1.0, args.max_seconds - connect_seconds))
    rec.recording = False
    still_open = open_now
    out = Path(args.out)
    np.savez(
        out,
        seq=np.frombuffer(rec.seq, dtype=np.int64),
        t=np.frombuffer(rec.t, dtype=np.float64),
        client=np.frombuffer(rec.client, dtype=np.int32),
    )
    summary = {
        "requested": args.count,
        "connected": connected,
        "failed": failed,
        "connect_seconds": round(connect_seconds, 3),
        "open_at_stop": still_open,
        "messages": rec.messages,
        "snapshots": rec.snapshots,
        "bytes": rec.bytes,
        "mismatched": rec.mismatched,
        "closes": dict(closes),
        "errors": dict(errors),
        "held": {str(k): v for k, v in rec.held.items()},
    }
    Path(str(out) + ".json").write_bytes(orjson.dumps(summary))  # noqa: ASYNC240 - the run is over
    print("done", flush=True)
    stdin_task.cancel()
    # Exit without closing 1000s of sockets one handshake at a time: the OS closes them.
    sys.stdout.flush()

    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--base-index", type=int, default=0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate")
    parser.add_argument(
        "--client",
        choices=("websockets", "raw"),
        default="websockets",
        help="websockets: the websockets library's client; raw: a minimal frame reader (no compression)",
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    assert args.url.startswith(("ws://127.0.0.1:", "ws://localhost:")), "loopback only"
    assert args.client == "websockets" or args.compression == "none", "the raw client has no compression"
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
