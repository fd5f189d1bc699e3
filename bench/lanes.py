"""Where the outbox relay lanes stand, for the benchmarks: backlogs, and when each lane reached a row.

A lane keeps one position per ticketing event (``outbox_lanes``: the last sequence it published, and
``updated_at``, the time the relay recorded it, taken when it read the batch, before publishing it). The
outbox rows themselves carry no per-lane time, so :class:`LanePoller` samples the positions of one event
during a run: a row was picked up at the ``updated_at`` of the first sampled position at or past its
sequence. When two batches land between two samples only the later one is seen, so per-row pick-up
times are upper bounds (by at most one relay cycle) and the batch count is a lower bound.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import asyncpg

LANES = ("live", "stream")

# Rows waiting per lane, over all events: each event's last sequence minus where the lane stands.
BACKLOG_SQL = """
SELECT l.lane, coalesce(sum(s.last_seq - coalesce(p.sequence, 0)), 0) AS waiting
FROM event_streams s
CROSS JOIN (VALUES ('live'), ('stream')) AS l(lane)
LEFT JOIN outbox_lanes p ON p.lane = l.lane AND p.aggregate_type = 'event' AND p.aggregate_id = s.event_id
GROUP BY l.lane
"""


async def backlogs(conn: asyncpg.Connection) -> dict[str, int]:
    """``{"live": n, "stream": m}``: how many domain events wait in each lane."""
    rows = await conn.fetch(BACKLOG_SQL)
    out = dict.fromkeys(LANES, 0)
    out.update({r["lane"]: int(r["waiting"]) for r in rows})
    return out


@dataclass
class LanePoller:
    """Samples both lanes' positions in one event every ``every`` seconds."""

    dsn: str
    event_id: int
    every: float = 0.01
    seen: dict[str, list[tuple[int, dt.datetime]]] = field(
        default_factory=lambda: {lane: [] for lane in LANES}
    )
    _stop: bool = False

    async def run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop:
                await self.sample(conn)
                await asyncio.sleep(self.every)
            await self.sample(conn)
        finally:
            await conn.close()

    async def sample(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            "SELECT lane, sequence, updated_at FROM outbox_lanes"
            " WHERE aggregate_type = 'event' AND aggregate_id = $1",
            self.event_id,
        )
        for r in rows:
            seen = self.seen.setdefault(r["lane"], [])
            if not seen or seen[-1][0] != r["sequence"]:
                seen.append((int(r["sequence"]), r["updated_at"]))

    def stop(self) -> None:
        self._stop = True

    def picked_up(self, lane: str, sequence: int) -> dt.datetime | None:
        """When ``lane`` reached ``sequence`` (an upper bound; None if not seen)."""
        return next((at for seq, at in self.seen.get(lane, []) if seq >= sequence), None)

    def batches(self, lane: str, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
        """The lane's sampled position moves in [since, until]: how many, rows per move, time between."""
        moves = [(seq, at) for seq, at in self.seen.get(lane, []) if since <= at <= until]
        sizes = [b[0] - a[0] for a, b in itertools.pairwise(moves)]
        gaps = [(b[1] - a[1]).total_seconds() * 1000 for a, b in itertools.pairwise(moves)]
        return {"moves": len(moves), "sizes": sizes, "gaps_ms": gaps}
