"""``Idempotency-Key`` support: the same key and body replay the first response; another body is refused.

The key row is written in the same transaction as the work it stands for, so a crash can lose neither
without the other. The row is claimed first (``INSERT ... ON CONFLICT DO NOTHING``): on PostgreSQL a
concurrent request with the same key waits on that row until the first commits, then replays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.db import Database, UTCDateTime, metadata, utcnow
from admitone.core.errors import Conflict, IdempotencyMismatch

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

T = TypeVar("T", bound=BaseModel)

KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="Any unique string (a UUID is a good choice). Retrying with the same key and body "
        "returns the first response without doing the work again.",
    ),
]


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    fingerprint: str


def fingerprint(*parts: BaseModel | str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, BaseModel):
            digest.update(part.model_dump_json().encode())
        elif part is not None:
            digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def make_key(key: str | None, scope: str, *parts: BaseModel | str | None) -> IdempotencyKey | None:
    return None if key is None else IdempotencyKey(scope, key, fingerprint(*parts))


def replay_response(status_code: int, body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={"Idempotent-Replayed": "true"})


async def stored(conn: AsyncConnection, keys: list[IdempotencyKey]) -> dict[str, sa.Row[Any]]:
    """Existing rows for the given keys of one scope, by key."""
    if not keys:
        return {}
    rows = await conn.execute(
        sa.select(idempotency_keys).where(
            idempotency_keys.c.scope == keys[0].scope, idempotency_keys.c.key.in_([k.key for k in keys])
        )
    )
    return {row.key: row for row in rows}


def check_match(row: sa.Row[Any], key: IdempotencyKey) -> JSONResponse:
    if row.fingerprint != key.fingerprint:
        raise IdempotencyMismatch(
            f"Idempotency-Key '{key.key}' was already used with a different request; use a new key "
            "for a new request."
        )
    if row.body is None:
        raise Conflict(f"A request with Idempotency-Key '{key.key}' is still in progress; retry shortly.")
    return replay_response(row.status_code, row.body)


async def record_many(conn: AsyncConnection, items: list[tuple[IdempotencyKey, int, Any]]) -> None:
    if items:
        now = utcnow()
        await conn.execute(
            sa.insert(idempotency_keys),
            [
                {
                    "scope": k.scope,
                    "key": k.key,
                    "fingerprint": k.fingerprint,
                    "status_code": status,
                    "body": body,
                    "created_at": now,
                }
                for k, status, body in items
            ],
        )


async def run_idempotent(
    db: Database,
    key: IdempotencyKey | None,
    status_code: int,
    work: Callable[[AsyncConnection], Awaitable[T]],
) -> T | JSONResponse:
    """Run ``work`` in one write transaction, recorded under ``key`` when one is given."""
    if key is None:
        async with db.write() as conn:
            return await work(conn)
    async with db.write() as conn:
        claim = await conn.execute(
            db.insert(idempotency_keys)
            .values(
                scope=key.scope,
                key=key.key,
                fingerprint=key.fingerprint,
                status_code=0,
                body=None,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        if claim.rowcount == 1:
            result = await work(conn)
            await conn.execute(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.scope == key.scope, idempotency_keys.c.key == key.key)
                .values(status_code=status_code, body=orjson.loads(result.model_dump_json()))
            )
            return result
        rows = await stored(conn, [key])
    return check_match(rows[key.key], key)
