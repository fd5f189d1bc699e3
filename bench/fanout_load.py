"""The hold load of bench/fanout.py: one seat per hold, at a fixed rate, over a pool of keep-alive
HTTP/1.1 connections.

    .venv/bin/python bench/fanout_load.py --port PORT --event ID --seats seats.json --rate 1000 \
        --duration 20 --out holds.npz [--connections 64] [--start-at UNIX_TIME]

Open loop: hold ``i`` is due at ``start + i / rate`` and takes seat ``seats[i]``; ``rate * duration``
holds in all. A connection that falls behind sends its next hold at once (never early), so a slow
server shows as a lower achieved rate, not as a hidden pause. Nothing is sent after ``start + duration
+ 5 s``; the process ends by itself at the latest 30 s after that.

Writes numpy arrays: ``seat``, ``status`` (0 when no response), ``send`` (``time.time()`` just before the
request was written) and ``response`` (``time.time()`` once the whole response was read).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np
import orjson

HOST = "127.0.0.1"


async def run(args: argparse.Namespace) -> None:
    seats: list[int] = orjson.loads(Path(args.seats).read_bytes())  # noqa: ASYNC240 - before the run
    total = min(int(args.rate * args.duration), len(seats))
    status = np.zeros(total, dtype=np.int16)
    send = np.zeros(total, dtype=np.float64)
    response = np.zeros(total, dtype=np.float64)
    start = args.start_at or time.time() + 0.2
    last_send = start + args.duration + 5.0
    hard_stop = last_send + 30.0
    path = f"/api/v1/events/{args.event}/holds"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{args.port}\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\n\r\n"
    )
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(HOST, args.port)
        try:
            while next_index < total:
                i = next_index
                next_index += 1
                due = start + i / args.rate
                now = time.time()
                if now > last_send:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                body = b'{"seat_ids":[%d]}' % seats[i]
                send[i] = time.time()
                writer.write(head.format(len(body)).encode() + body)
                headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), hard_stop - time.time())
                length = 0
                for line in headers.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                response[i] = time.time()
                status[i] = int(headers[9:12])
        finally:
            writer.close()

    results = await asyncio.gather(*(worker() for _ in range(args.connections)), return_exceptions=True)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    np.savez(
        args.out, seat=np.asarray(seats[:total], dtype=np.int64), status=status, send=send, response=response
    )
    Path(args.out + ".json").write_bytes(  # noqa: ASYNC240 - the run is over
        orjson.dumps({"start": start, "total": total, "worker_failures": failures[:20]})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--event", type=int, required=True)
    parser.add_argument("--seats", required=True, help="JSON list of seat ids, used in order")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
