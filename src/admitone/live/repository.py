"""The SQL the live hub needs: one consistent snapshot of an event's inventory."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.events.models import event_streams, events, seats
from admitone.inventory import repository as inventory_repo
from admitone.inventory.models import seat_claims


@dataclass
class Snapshot:
    event_id: int
    seq: int
    seats: dict[int, str]  # seats that are not free
    quotas: dict[int, dict[str, Any]]
    ticket_types: list[dict[str, Any]]
    seat_categories: dict[int, str]
    extra: dict[str, Any] = field(default_factory=dict)


async def published_event(conn: AsyncConnection, event_id: int) -> bool:
    status = await conn.scalar(sa.select(events.c.status).where(events.c.id == event_id))
    return status is not None and status != "draft"


async def load_snapshot(conn: AsyncConnection, event_id: int, now: dt.datetime) -> Snapshot:
    """Call inside :meth:`Database.snapshot` so that every part is of the same moment."""
    seq = int(
        await conn.scalar(sa.select(event_streams.c.last_seq).where(event_streams.c.event_id == event_id))
        or 0
    )
    venue_id = await conn.scalar(sa.select(events.c.venue_id).where(events.c.id == event_id))
    categories: dict[int, str] = {}
    if venue_id is not None:
        rows = await conn.execute(sa.select(seats.c.id, seats.c.category).where(seats.c.venue_id == venue_id))
        categories = {r.id: r.category for r in rows}
    claims = await conn.execute(
        sa.select(seat_claims.c.seat_id, seat_claims.c.state, seat_claims.c.expires_at).where(
            seat_claims.c.event_id == event_id
        )
    )
    # Claims past their deadline are held in the tables until swept; the live view, like the REST view,
    # shows them free. The sweep's own event then confirms it.
    taken = {
        r.seat_id: r.state for r in claims if r.state == "sold" or r.expires_at is None or r.expires_at > now
    }
    quotas = await inventory_repo.load_quotas(conn, event_id)
    lapsed = await inventory_repo.expired_usage(conn, event_id, now)
    types = await inventory_repo.load_ticket_types(conn, event_id)
    return Snapshot(
        event_id=event_id,
        seq=seq,
        seats=taken,
        quotas={
            q.id: {
                "quota_id": q.id,
                "capacity": q.capacity,
                "held": q.held - lapsed.get(q.id, 0),
                "sold": q.sold,
                "available": q.capacity - q.sold - q.held + lapsed.get(q.id, 0),
            }
            for q in quotas.values()
        },
        ticket_types=[
            {"ticket_type_id": t.id, "kind": t.kind, "category": t.category, "quota_ids": list(t.quota_ids)}
            for t in sorted(types.values(), key=lambda t: t.id)
        ],
        seat_categories=categories,
    )
