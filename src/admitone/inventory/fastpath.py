"""The hold endpoint without the web framework's per-request work.

``POST /api/v1/events/{event_id}/holds`` is the hot path of an on-sale. Served by FastAPI it pays for
routing, dependency solving, parameter and body validation through several layers of objects, which cost
more server CPU per request than the batching writer behind it (docs/benchmarks.md). This pure ASGI layer
sits in front of the app and serves exactly the well-formed requests of that route itself:

* ``POST``, path ``/api/v1/events/<id>/holds`` with ``1 <= id <= 2**31 - 1`` written as plain digits;
* ``Content-Type: application/json`` and a ``Content-Length`` within the body limit;
* at most one ``Idempotency-Key`` header, matching its documented pattern;
* a body that ``HoldCreate`` accepts (validated by its pydantic-core validator, straight from the bytes).

Everything else (bad input, other content types, chunked bodies, oversized bodies) goes on, with the body
already read replayed, to the FastAPI route, which stays registered and documented and answers exactly as
before: its 422 details, its 413, its 404 for a bad path. A request the fast path serves gets the same
answers as from the route: 201 with the hold, the idempotent replay with its header, and domain errors
(404, 409, 503, 422 for a reused key) as the same problem+json documents.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admitone.core.errors import DomainError, internal_error, problem
from admitone.core.idempotency import IdempotencyKey, fingerprint
from admitone.core.schemas import INT32_MAX
from admitone.inventory.schemas import HoldCreate

_PATH = re.compile(r"/api/v1/events/([1-9][0-9]{0,9})/holds")
_KEY = re.compile(rb"[\x21-\x7e]{1,200}")
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
_validate_json = HoldCreate.__pydantic_validator__.validate_json
_CREATED_HEADERS = (b"content-type", b"application/json")


class HoldFastPath:
    """Serves well-formed hold requests directly; passes every other request to ``app`` unchanged."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        match = _PATH.fullmatch(path) if path.endswith("/holds") else None
        if match is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        event_id = int(match.group(1))
        length = -1
        content_type = b""
        raw_key: bytes | None = None
        keys = 0
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() and len(value) < 12 else -2
            elif name == b"content-type":
                content_type = value.lower()
            elif name == b"idempotency-key":
                raw_key = value
                keys += 1
        if (
            event_id > INT32_MAX
            or not 0 < length <= self.limit
            or content_type not in _JSON_TYPES
            or keys > 1
            or (raw_key is not None and _KEY.fullmatch(raw_key) is None)
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > length:
                break
        if len(body) != length:
            await self._pass_on(scope, receive, send, body, more)
            return
        try:
            request = _validate_json(body)
        except ValidationError:
            await self._pass_on(scope, receive, send, body, more)
            return
        key = None
        if raw_key is not None:
            key = IdempotencyKey(f"hold:{event_id}", raw_key.decode("ascii"), fingerprint(request))
        state: Any = scope["app"].state.admitone
        try:
            result = await state.engine.hold(event_id, request, key)
        except DomainError as exc:
            await problem(exc.status, exc.slug, exc.title, exc.detail, path, **exc.extra)(
                scope, receive, send
            )
            return
        except Exception as exc:  # served ahead of the framework: render its 500 here
            await internal_error("POST", path, exc)(scope, receive, send)
            return
        if isinstance(result, bytes):
            await send(
                {
                    "type": "http.response.start",
                    "status": 201,
                    "headers": [(b"content-length", str(len(result)).encode()), _CREATED_HEADERS],
                }
            )
            await send({"type": "http.response.body", "body": result})
        else:  # an idempotent replay
            await result(scope, receive, send)

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send, body: bytes, more: bool) -> None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)
