"""Pure allocation logic: the in-memory view one batch works on, and best-available seat search.

Nothing here touches the database; the engine loads the state under the event's lock, allocates here and
writes the result back with statements the database checks again.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from admitone.core.errors import Conflict, InvalidRequest, NotFound, QuotaExceeded, SeatsTaken, SoldOut
from admitone.inventory.schemas import BestAvailableRequest, HoldCreate, HoldLineOut, HoldOut


@dataclass(frozen=True, slots=True)
class SeatInfo:
    id: int
    section_id: int
    section: str
    row: str
    row_ordinal: int
    number: int
    label: str
    category: str
    x: float = 0.0


@dataclass(frozen=True, slots=True)
class Row:
    section_id: int
    ordinal: int
    label: str
    seats: tuple[SeatInfo, ...]  # sorted by number


@dataclass
class VenueLayout:
    """A venue's seats, grouped as sections of rows; immutable once the venue exists."""

    venue_id: int
    seats: dict[int, SeatInfo]
    sections: dict[int, tuple[str, int]]  # id -> (name, ordinal)
    rows: dict[int, list[Row]]  # section id -> rows, front first
    centre_x: float = 0.0

    @classmethod
    def build(
        cls, venue_id: int, seat_infos: Iterable[SeatInfo], sections: dict[int, tuple[str, int]]
    ) -> VenueLayout:
        by_row: dict[tuple[int, int], list[SeatInfo]] = {}
        seats: dict[int, SeatInfo] = {}
        for seat in seat_infos:
            seats[seat.id] = seat
            by_row.setdefault((seat.section_id, seat.row_ordinal), []).append(seat)
        rows: dict[int, list[Row]] = {sid: [] for sid in sections}
        for (section_id, ordinal), members in sorted(by_row.items()):
            members.sort(key=lambda s: s.number)
            rows[section_id].append(Row(section_id, ordinal, members[0].row, tuple(members)))
        xs = [s.x for s in seats.values()]
        centre_x = (min(xs) + max(xs)) / 2 if xs else 0.0
        return cls(venue_id, seats, sections, rows, centre_x)


@dataclass(frozen=True, slots=True)
class TicketTypeInfo:
    id: int
    name: str
    kind: str
    category: str | None
    price_minor: int
    currency: str
    min_per_order: int
    max_per_order: int
    quota_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QuotaInfo:
    id: int
    name: str
    capacity: int
    held: int
    sold: int


@dataclass(frozen=True, slots=True)
class EventInfo:
    id: int
    status: str
    venue_id: int | None
    currency: str
    sales_open_at: dt.datetime | None
    sales_close_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DraftLine:
    ticket_type: TicketTypeInfo
    seat: SeatInfo | None
    quantity: int


@dataclass
class HoldDraft:
    id: str
    event_id: int
    lines: list[DraftLine]
    total_minor: int
    currency: str
    expires_at: dt.datetime
    created_at: dt.datetime

    def to_out(self) -> HoldOut:
        return HoldOut(
            id=self.id,
            event_id=self.event_id,
            status="active",
            expires_at=self.expires_at,
            total_minor=self.total_minor,
            currency=self.currency,
            lines=[
                HoldLineOut(
                    ticket_type_id=line.ticket_type.id,
                    ticket_type=line.ticket_type.name,
                    seat_id=line.seat.id if line.seat else None,
                    seat_label=line.seat.label if line.seat else None,
                    quantity=line.quantity,
                    unit_price_minor=line.ticket_type.price_minor,
                )
                for line in self.lines
            ],
        )


def check_on_sale(event: EventInfo, now: dt.datetime) -> None:
    if event.status != "on_sale":
        raise Conflict(f"Event {event.id} is {event.status.replace('_', ' ')}; it is not selling tickets.")
    if event.sales_open_at and now < event.sales_open_at:
        raise Conflict(f"Sales for event {event.id} open at {event.sales_open_at.isoformat()}.")
    if event.sales_close_at and now >= event.sales_close_at:
        raise Conflict(f"Sales for event {event.id} closed at {event.sales_close_at.isoformat()}.")


def find_best_block(
    layout: VenueLayout,
    want: BestAvailableRequest,
    taken: set[int],
    sellable_categories: set[str],
) -> list[SeatInfo] | None:
    """The best ``want.quantity`` adjacent free seats in one row, or None.

    Ranking: no lone seat left beside the block where another placement avoids it; then front rows first;
    then closest to the venue's centre line; then the section order.
    """
    n = want.quantity
    if want.section_id is not None:
        if want.section_id not in layout.sections:
            raise NotFound(f"Section {want.section_id} is not part of this event's venue.")
        section_ids = [want.section_id]
    else:
        section_ids = sorted(layout.sections, key=lambda s: layout.sections[s][1])
    best: tuple[tuple[int, int, float, int], list[SeatInfo]] | None = None
    for section_rank, section_id in enumerate(section_ids):
        for row in layout.rows.get(section_id, ()):
            run: list[SeatInfo] = []
            runs: list[list[SeatInfo]] = []
            for seat in row.seats:
                usable = (
                    seat.id not in taken
                    and seat.category in sellable_categories
                    and (want.category is None or seat.category == want.category)
                )
                if usable and run and seat.number == run[-1].number + 1:
                    run.append(seat)
                elif usable:
                    if run:
                        runs.append(run)
                    run = [seat]
                else:
                    if run:
                        runs.append(run)
                    run = []
            if run:
                runs.append(run)
            for free in runs:
                for start in range(len(free) - n + 1):
                    left, right = start, len(free) - n - start
                    orphans = (left == 1) + (right == 1)
                    block = free[start : start + n]
                    middle = sum(s.x for s in block) / n
                    key = (orphans, row.ordinal, abs(middle - layout.centre_x), section_rank)
                    if best is None or key < best[0]:
                        best = (key, block)
    return None if best is None else best[1]


@dataclass
class Allocator:
    """Allocates one batch of hold requests, in arrival order, against state read under the lock."""

    event: EventInfo
    ticket_types: dict[int, TicketTypeInfo]
    quotas: dict[int, QuotaInfo]
    layout: VenueLayout | None
    taken: set[int]
    now: dt.datetime
    ttl: dt.timedelta
    quota_delta: Counter[int] = field(default_factory=Counter)
    seats_claimed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.available = {q.id: q.capacity - q.held - q.sold for q in self.quotas.values()}
        self.seated_by_category: dict[str, TicketTypeInfo] = {}
        for tt in sorted(self.ticket_types.values(), key=lambda t: t.id):
            if tt.kind == "seated" and tt.category is not None:
                self.seated_by_category.setdefault(tt.category, tt)

    def allocate(self, request: HoldCreate) -> HoldDraft:
        event = self.event
        check_on_sale(event, self.now)
        lines: list[DraftLine] = []
        per_type: Counter[int] = Counter()
        need: Counter[int] = Counter()
        for item in request.tickets:
            tt = self.ticket_types.get(item.ticket_type_id)
            if tt is None:
                raise NotFound(f"Ticket type {item.ticket_type_id} is not sold for event {event.id}.")
            if tt.kind != "admission":
                raise InvalidRequest(
                    f"'{tt.name}' is a seated ticket type: choose seats with seat_ids or best_available."
                )
            per_type[tt.id] += item.quantity
            lines.append(DraftLine(tt, None, item.quantity))
        seats: list[SeatInfo] = []
        if request.seat_ids or request.best_available:
            if self.layout is None:
                raise InvalidRequest(f"Event {event.id} has no seat map; ask for tickets instead of seats.")
            layout = self.layout
        if request.seat_ids:
            unknown = [s for s in request.seat_ids if s not in layout.seats]
            if unknown:
                raise NotFound(f"Seats {unknown[:20]} are not part of this event's venue.")
            seats = [layout.seats[s] for s in request.seat_ids]
            gone = [s for s in seats if s.id in self.taken]
            if gone:
                labels = [s.label for s in gone]
                raise SeatsTaken(
                    f"{'Seat' if len(gone) == 1 else 'Seats'} {', '.join(labels)} "
                    f"{'is' if len(gone) == 1 else 'are'} already taken; pick others.",
                    seats=labels,
                    seat_ids=[s.id for s in gone],
                )
        if request.best_available:
            want = request.best_available
            block = find_best_block(
                layout, want, self.taken | {s.id for s in seats}, set(self.seated_by_category)
            )
            if block is None:
                where = f" in section {layout.sections[want.section_id][0]}" if want.section_id else ""
                raise SoldOut(
                    f"No {want.quantity} adjacent seats are left{where}; try fewer or another section."
                )
            seats.extend(block)
        for seat in seats:
            tt = self.seated_by_category.get(seat.category)
            if tt is None:
                raise InvalidRequest(
                    f"Seat {seat.label} is not on sale (category '{seat.category}' has no price)."
                )
            per_type[tt.id] += 1
            lines.append(DraftLine(tt, seat, 1))
        for tt_id, count in per_type.items():
            tt = self.ticket_types[tt_id]
            if not tt.min_per_order <= count <= tt.max_per_order:
                raise InvalidRequest(
                    f"'{tt.name}' is sold {tt.min_per_order} to {tt.max_per_order} per order; "
                    f"asked for {count}."
                )
            for quota_id in tt.quota_ids:
                need[quota_id] += count
        for quota_id, count in need.items():
            left = self.available.get(quota_id, 0)
            if left < count:
                quota = self.quotas[quota_id]
                if left == 0:
                    raise SoldOut(f"'{quota.name}' is sold out.", quota_id=quota_id, available=0)
                raise QuotaExceeded(
                    f"Only {left} left in '{quota.name}'; asked for {count}.",
                    quota_id=quota_id,
                    available=left,
                )
        for quota_id, count in need.items():
            self.available[quota_id] -= count
            self.quota_delta[quota_id] += count
        for seat in seats:
            self.taken.add(seat.id)
            self.seats_claimed.append(seat.id)
        total = sum(line.ticket_type.price_minor * line.quantity for line in lines)
        return HoldDraft(
            id=f"hold_{secrets.token_urlsafe(24)}",
            event_id=event.id,
            lines=lines,
            total_minor=total,
            currency=event.currency,
            expires_at=self.now + self.ttl,
            created_at=self.now,
        )
