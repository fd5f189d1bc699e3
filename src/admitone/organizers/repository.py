"""SQL of organizers and API keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.organizers.models import api_keys, organizers


async def insert_organizer(conn: AsyncConnection, name: str, now: dt.datetime) -> int:
    result = await conn.execute(
        sa.insert(organizers).values(name=name, created_at=now).returning(organizers.c.id)
    )
    return int(result.scalar_one())


async def insert_key(
    conn: AsyncConnection,
    organizer_id: int,
    prefix: str,
    key_hash: str,
    scopes: str,
    name: str,
    now: dt.datetime,
) -> int:
    result = await conn.execute(
        sa.insert(api_keys)
        .values(
            organizer_id=organizer_id,
            prefix=prefix,
            key_hash=key_hash,
            scopes=scopes,
            name=name,
            created_at=now,
        )
        .returning(api_keys.c.id)
    )
    return int(result.scalar_one())


async def key_by_prefix(conn: AsyncConnection, prefix: str) -> sa.Row[Any] | None:
    result = await conn.execute(
        sa.select(api_keys, organizers.c.name.label("organizer_name"))
        .join(organizers, organizers.c.id == api_keys.c.organizer_id)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
    )
    return result.first()


async def organizer_by_name(conn: AsyncConnection, name: str) -> int | None:
    result = await conn.execute(sa.select(organizers.c.id).where(organizers.c.name == name))
    value = result.scalar()
    return None if value is None else int(value)
