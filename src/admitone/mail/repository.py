"""All SQL of e-mail jobs, and the reads that fill an order confirmation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.events.models import events, venues
from admitone.mail.models import mail_jobs
from admitone.orders.models import orders

CLAIMABLE = ("pending", "sending")


async def insert_job(conn: AsyncConnection, dialect: str, values: dict[str, Any]) -> bool:
    """Records a job once per (kind, order); True when it is new."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    result = await conn.execute(
        insert(mail_jobs).values(values).on_conflict_do_nothing(index_elements=["kind", "order_id"])
    )
    return bool(result.rowcount)


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(mail_jobs.c.status == "pending", mail_jobs.c.next_attempt_at <= now),
        sa.and_(mail_jobs.c.status == "sending", mail_jobs.c.lease_until <= now),
    )


async def any_due(conn: AsyncConnection, now: dt.datetime) -> bool:
    """A read-only look first, so an idle sender never takes the (SQLite: only) write connection."""
    return (await conn.execute(sa.select(mail_jobs.c.id).where(_due(now)).limit(1))).first() is not None


async def claim(
    conn: AsyncConnection,
    dialect: str,
    now: dt.datetime,
    lease_until: dt.datetime,
    token: str,
    limit: int,
) -> list[sa.Row[Any]]:
    """Takes up to ``limit`` due jobs for one sender: pending ones whose time has come and ones whose
    sender's lease ran out. On PostgreSQL rows another sender is claiming are skipped, not waited for;
    on SQLite the write transaction already runs alone."""
    pick = sa.select(mail_jobs.c.id).where(_due(now)).order_by(mail_jobs.c.next_attempt_at, mail_jobs.c.id)
    pick = pick.limit(limit)
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await conn.execute(pick)).scalars())
    if not ids:
        return []
    rows = await conn.execute(
        sa.update(mail_jobs)
        .where(mail_jobs.c.id.in_(ids))
        .values(
            status="sending",
            attempts=mail_jobs.c.attempts + 1,
            claim_token=token,
            claimed_at=now,
            lease_until=lease_until,
            updated_at=now,
        )
        .returning(*mail_jobs.c)
    )
    return sorted(rows, key=lambda r: (r.next_attempt_at, r.id))


def _ours(job_id: int, token: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        mail_jobs.c.id == job_id, mail_jobs.c.status == "sending", mail_jobs.c.claim_token == token
    )


async def finish(conn: AsyncConnection, job_id: int, token: str, now: dt.datetime, **values: Any) -> bool:
    """Ends this sender's claim of a job with ``values``; False if the claim was lost (lease ran out)."""
    result = await conn.execute(
        sa.update(mail_jobs)
        .where(_ours(job_id, token))
        .values(claim_token=None, lease_until=None, updated_at=now, **values)
    )
    return bool(result.rowcount)


async def release(conn: AsyncConnection, job_ids: Sequence[int], token: str, now: dt.datetime) -> None:
    """Gives claimed jobs that were never tried back (a sender that stops), without using an attempt."""
    if not job_ids:
        return
    await conn.execute(
        sa.update(mail_jobs)
        .where(
            mail_jobs.c.id.in_(list(job_ids)),
            mail_jobs.c.status == "sending",
            mail_jobs.c.claim_token == token,
        )
        .values(
            status="pending",
            attempts=mail_jobs.c.attempts - 1,
            claim_token=None,
            lease_until=None,
            next_attempt_at=now,
            updated_at=now,
        )
    )


async def get_order(conn: AsyncConnection, order_id: str) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(orders).where(orders.c.id == order_id))).first()


async def event_with_venue(conn: AsyncConnection, event_id: int) -> Any:
    """The event's name, start, time zone and venue name (None: no such event)."""
    return (
        await conn.execute(
            sa.select(
                events.c.id,
                events.c.name,
                events.c.starts_at,
                events.c.timezone,
                venues.c.name.label("venue_name"),
            )
            .outerjoin(venues, venues.c.id == events.c.venue_id)
            .where(events.c.id == event_id)
        )
    ).first()


async def jobs_of_event(
    conn: AsyncConnection,
    organizer_id: int,
    event_id: int,
    status: str | None,
    limit: int,
    offset: int,
) -> list[sa.Row[Any]]:
    query = sa.select(mail_jobs).where(
        mail_jobs.c.organizer_id == organizer_id, mail_jobs.c.event_id == event_id
    )
    if status:
        query = query.where(mail_jobs.c.status == status)
    return list(await conn.execute(query.order_by(mail_jobs.c.id.desc()).limit(limit).offset(offset)))


async def get_job(conn: AsyncConnection, job_id: int) -> sa.Row[Any] | None:
    return (await conn.execute(sa.select(mail_jobs).where(mail_jobs.c.id == job_id))).first()


async def requeue(conn: AsyncConnection, job_id: int, now: dt.datetime) -> sa.Row[Any] | None:
    """Puts a pending or failed job back in line at once with a fresh set of attempts (None: it was not
    pending or failed any more)."""
    return (
        await conn.execute(
            sa.update(mail_jobs)
            .where(mail_jobs.c.id == job_id, mail_jobs.c.status.in_(("pending", "failed")))
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                last_error=None,
                claim_token=None,
                lease_until=None,
                updated_at=now,
            )
            .returning(*mail_jobs.c)
        )
    ).first()
