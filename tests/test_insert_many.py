"""``insert_many`` writes exactly what executemany would, on both databases."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from admitone.core.db import insert_many
from admitone.outbox.models import outbox
from tests.harness import Harness


async def test_insert_many_stores_every_row_and_type(harness: Harness) -> None:
    h = harness
    when = dt.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    rows = [
        {
            "event_uuid": f"00000000-0000-4000-8000-{i:012d}",
            "type": "test.happened",
            "version": 1,
            "aggregate_type": "test",
            "aggregate_id": 7,
            "sequence": i,
            "occurred_at": when + dt.timedelta(seconds=i),
            "payload": {"n": i, "text": "quote ' and \" and ü", "nested": [1, None, {"a": True}]},
        }
        for i in range(1, 301)
    ]
    async with h.state.db.write() as conn:
        await insert_many(conn, outbox, rows)
        await insert_many(conn, outbox, [])  # nothing to do
    columns = [outbox.c[name] for name in rows[0]]
    async with h.state.db.read() as conn:
        query = sa.select(*columns).where(outbox.c.aggregate_type == "test").order_by(outbox.c.sequence)
        stored = (await conn.execute(query)).all()
    assert [dict(r._mapping) for r in stored] == rows
