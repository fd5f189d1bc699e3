"""The demo data: an organizer, the demo hall, and an event on sale with seated and standing tickets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from admitone.core.db import Database
from admitone.demo.seatmap import demo_venue
from admitone.events import service as events
from admitone.events.models import events as events_table
from admitone.events.schemas import EventCreate, QuotaCreate, TicketTypeCreate
from admitone.organizers import repository as organizers_repo
from admitone.organizers import service as organizers

DEMO_ORGANIZER = "Demo Organizer"
DEMO_SLUG = "admitone-live"
PRICES = {"A": 8900, "B": 6500, "C": 4500}


@dataclass
class DemoInfo:
    organizer_id: int
    event_id: int
    api_key: str
    created: bool


async def seed(db: Database, now: dt.datetime) -> DemoInfo:
    """Creates the demo data once; later calls only issue a fresh organizer key."""
    async with db.write() as conn:
        organizer_id = await organizers_repo.organizer_by_name(conn, DEMO_ORGANIZER)
        if organizer_id is not None:
            key = await organizers.create_key(conn, organizer_id, ("read", "write"), now, name="demo")
            event_id = (
                await conn.execute(sa.select(events_table.c.id).where(events_table.c.slug == DEMO_SLUG))
            ).scalar_one()
            return DemoInfo(organizer_id, int(event_id), key.api_key, created=False)
        created = await organizers.create_organizer(conn, DEMO_ORGANIZER, now)
        organizer_id = created.organizer_id
        venue = await events.create_venue(conn, organizer_id, demo_venue(), now)
        event = await events.create_event(
            conn,
            organizer_id,
            EventCreate(
                name="admitone Live: The Demo Tour",
                slug=DEMO_SLUG,
                description="A seated hall plus a standing area, on sale now.",
                venue_id=venue.id,
                starts_at=(now + dt.timedelta(days=30)).replace(hour=19, minute=30, second=0, microsecond=0),
                timezone="Europe/Berlin",
                sales_open_at=now - dt.timedelta(minutes=1),
                currency="EUR",
                status="on_sale",
            ),
            now,
        )
        for category, price in PRICES.items():
            await events.create_ticket_type(
                conn,
                organizer_id,
                event.id,
                TicketTypeCreate(
                    name=f"Seat, category {category}",
                    kind="seated",
                    category=category,
                    price_minor=price,
                    max_per_order=8,
                ),
                now,
            )
        standing = await events.create_quota(
            conn, organizer_id, event.id, QuotaCreate(name="Standing", capacity=500)
        )
        await events.create_ticket_type(
            conn,
            organizer_id,
            event.id,
            TicketTypeCreate(name="Standing", kind="admission", price_minor=3900, quota_ids=[standing.id]),
            now,
        )
        await events.create_ticket_type(
            conn,
            organizer_id,
            event.id,
            TicketTypeCreate(
                name="Standing, reduced",
                kind="admission",
                price_minor=2900,
                max_per_order=2,
                quota_ids=[standing.id],
            ),
            now,
        )
        return DemoInfo(organizer_id, event.id, created.api_key, created=True)
