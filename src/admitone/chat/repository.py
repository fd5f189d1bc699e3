"""All SQL of the event chat."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.chat.models import chat_messages, chat_settings, chat_users
from admitone.events.models import events


async def event_status(conn: AsyncConnection, event_id: int) -> str | None:
    status = await conn.scalar(sa.select(events.c.status).where(events.c.id == event_id))
    return None if status is None else str(status)


# -- users ----------------------------------------------------------------------------------------------


async def user_by_name_key(conn: AsyncConnection, event_id: int, name_key: str) -> sa.Row[Any] | None:
    return (
        await conn.execute(
            sa.select(chat_users).where(chat_users.c.event_id == event_id, chat_users.c.name_key == name_key)
        )
    ).first()


async def user_by_token(conn: AsyncConnection, event_id: int, token_hash: str) -> sa.Row[Any] | None:
    return (
        await conn.execute(
            sa.select(chat_users).where(
                chat_users.c.event_id == event_id, chat_users.c.token_hash == token_hash
            )
        )
    ).first()


async def get_user(conn: AsyncConnection, event_id: int, user_id: int) -> sa.Row[Any] | None:
    return (
        await conn.execute(
            sa.select(chat_users).where(chat_users.c.event_id == event_id, chat_users.c.id == user_id)
        )
    ).first()


async def insert_user(
    conn: AsyncConnection, event_id: int, name: str, name_key: str, token_hash: str, now: dt.datetime
) -> int:
    return int(
        (
            await conn.execute(
                sa.insert(chat_users)
                .values(
                    event_id=event_id,
                    name=name,
                    name_key=name_key,
                    token_hash=token_hash,
                    created_at=now,
                    muted_until=None,
                    banned=False,
                )
                .returning(chat_users.c.id)
            )
        ).scalar_one()
    )


async def set_muted_until(conn: AsyncConnection, user_id: int, until: dt.datetime) -> None:
    await conn.execute(sa.update(chat_users).where(chat_users.c.id == user_id).values(muted_until=until))


async def set_banned(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(sa.update(chat_users).where(chat_users.c.id == user_id).values(banned=True))


# -- messages -------------------------------------------------------------------------------------------


async def insert_message(
    conn: AsyncConnection,
    event_id: int,
    channel: str,
    user_id: int | None,
    author: str,
    text: str,
    now: dt.datetime,
) -> int:
    return int(
        (
            await conn.execute(
                sa.insert(chat_messages)
                .values(
                    event_id=event_id,
                    channel=channel,
                    user_id=user_id,
                    author=author,
                    text=text,
                    posted_at=now,
                    deleted_at=None,
                )
                .returning(chat_messages.c.id)
            )
        ).scalar_one()
    )


async def last_post_times(conn: AsyncConnection, user_id: int, n: int) -> list[dt.datetime]:
    """When the user's last ``n`` messages were posted, newest first (deleted ones count too)."""
    rows = await conn.execute(
        sa.select(chat_messages.c.posted_at)
        .where(chat_messages.c.user_id == user_id)
        .order_by(chat_messages.c.posted_at.desc())
        .limit(n)
    )
    return [r.posted_at for r in rows]


async def get_message(conn: AsyncConnection, event_id: int, message_id: int) -> sa.Row[Any] | None:
    return (
        await conn.execute(
            sa.select(chat_messages).where(
                chat_messages.c.event_id == event_id, chat_messages.c.id == message_id
            )
        )
    ).first()


async def mark_deleted(conn: AsyncConnection, message_id: int, now: dt.datetime) -> None:
    await conn.execute(
        sa.update(chat_messages).where(chat_messages.c.id == message_id).values(deleted_at=now)
    )


async def latest_messages(
    conn: AsyncConnection, event_id: int, channel: str, limit: int, before_id: int | None = None
) -> list[sa.Row[Any]]:
    """Up to ``limit`` visible messages of a channel before ``before_id``, newest first."""
    query = sa.select(chat_messages).where(
        chat_messages.c.event_id == event_id,
        chat_messages.c.channel == channel,
        chat_messages.c.deleted_at.is_(None),
    )
    if before_id is not None:
        query = query.where(chat_messages.c.id < before_id)
    return list(await conn.execute(query.order_by(chat_messages.c.id.desc()).limit(limit)))


# -- settings -------------------------------------------------------------------------------------------


async def get_settings(conn: AsyncConnection, event_id: int) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(chat_settings).where(chat_settings.c.event_id == event_id))).first()


async def save_settings(
    conn: AsyncConnection, event_id: int, slow_mode_seconds: int, closed: bool, *, exists: bool
) -> None:
    """Call under the event's lock: whether the row ``exists`` cannot change meanwhile."""
    values = {"slow_mode_seconds": slow_mode_seconds, "closed": closed}
    if exists:
        await conn.execute(
            sa.update(chat_settings).where(chat_settings.c.event_id == event_id).values(values)
        )
    else:
        await conn.execute(sa.insert(chat_settings).values(event_id=event_id, **values))
