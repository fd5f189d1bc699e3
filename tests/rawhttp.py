"""A minimal HTTP/1.1 client, one connection per request, so a test can really have a thousand in flight.

httpx's connection pool serialises work between waiting requests; with a thousand of them the client, not
the server, becomes what is measured.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


async def post_json(port: int, path: str, body: Any, limit_seconds: float = 60) -> tuple[int, Any]:
    """POSTs JSON to 127.0.0.1:port; returns (status, parsed body). Connection errors give status -1."""
    data = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), limit_seconds)
    except (OSError, TimeoutError):
        return -1, None
    try:
        writer.write(head + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), limit_seconds)
    except (OSError, TimeoutError):
        return -1, None
    finally:
        writer.close()
    header, _, payload = raw.partition(b"\r\n\r\n")
    if not header:
        return -1, None
    status = int(header.split(b" ", 2)[1])
    return status, orjson.loads(payload) if payload else None
