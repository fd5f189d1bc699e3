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
import contextlib
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SEQ_MARK = b',"seq":'


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


async def run(args: argparse.Namespace) -> None:
    rec = Recorder()
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    open_now = 0
    stop = asyncio.Event()
    compression = None if args.compression == "none" else "deflate"

    async def one(index: int, ready: asyncio.Future[bool]) -> None:
        nonlocal open_now
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
            errors[f"connect:{type(exc).__name__}"] += 1
            if not ready.done():
                ready.set_result(False)
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
    import os

    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--base-index", type=int, default=0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    assert args.url.startswith(("ws://127.0.0.1:", "ws://localhost:")), "loopback only"
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
