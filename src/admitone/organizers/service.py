"""Organizers and API keys: creation and authentication."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core import security
from admitone.core.errors import InvalidRequest, Unauthorized
from admitone.organizers import repository
from admitone.organizers.schemas import Caller, CreatedKey


async def create_organizer(
    conn: AsyncConnection, name: str, now: dt.datetime, scopes: tuple[str, ...] = security.SCOPES
) -> CreatedKey:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("An organizer name needs 1 to 200 characters.")
    organizer_id = await repository.insert_organizer(conn, name, now)
    return await create_key(conn, organizer_id, scopes, now)


async def create_key(
    conn: AsyncConnection, organizer_id: int, scopes: tuple[str, ...], now: dt.datetime, name: str = "default"
) -> CreatedKey:
    unknown = set(scopes) - set(security.SCOPES)
    if unknown or not scopes:
        raise InvalidRequest(f"Scopes must be among {', '.join(security.SCOPES)}; got {', '.join(scopes)}.")
    key, prefix, key_hash = security.new_api_key()
    key_id = await repository.insert_key(conn, organizer_id, prefix, key_hash, ",".join(scopes), name, now)
    return CreatedKey(
        organizer_id=organizer_id, key_id=key_id, api_key=key, scopes=list(scopes), created_at=now
    )


async def authenticate(conn: AsyncConnection, key: str | None) -> Caller:
    if not key:
        raise Unauthorized("This endpoint needs an organizer API key: send 'Authorization: Bearer <key>'.")
    prefix = security.split_api_key(key)
    row = await repository.key_by_prefix(conn, prefix) if prefix else None
    if row is None or not security.same(row.key_hash, security.hash_secret(key)):
        raise Unauthorized("The API key is not valid or has been revoked.")
    return Caller(
        organizer_id=row.organizer_id,
        organizer_name=row.organizer_name,
        key_id=row.id,
        scopes=frozenset(row.scopes.split(",")),
    )
