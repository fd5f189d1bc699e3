"""Model-based test of the inventory.

Random sequences of holds (general admission, chosen seats, best available, several at once, retried
with an Idempotency-Key), releases, orders (test and free provider), payments (succeeding or failing),
cancellations, refunds, clock moves and sweeps run through the HTTP API of one app. A plain Python model
of the event predicts every answer, and after every step availability, the seat map and the database
invariants must agree with it.

Hypothesis runs in a worker thread; every request is handed to the event loop of the ``harness`` fixture,
so the same app and database serve all examples, each on a fresh event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx
import hypothesis.strategies as st
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.harness import Harness, small_venue

HOLD_TTL = dt.timedelta(seconds=600)
ORDER_TTL = dt.timedelta(seconds=900)
LIVE = ("active", "ordered")
REPLAYED = "Idempotent-Replayed"


@dataclass(frozen=True)
class TypeSpec:
    name: str
    price: int
    quotas: tuple[str, ...]
    max_per_order: int = 10
    category: str | None = None


# Two standing types share the floor quota, one uses the upper quota, a pass needs room in both;
# category B seats also count against the upper quota (and are free of charge).
GA_TYPES = {
    "standing": TypeSpec("Standing", 2500, ("floor",), 4),
    "guest": TypeSpec("Guest list", 0, ("floor",), 2),
    "upper": TypeSpec("Upper standing", 1500, ("upper",), 3),
    "pass": TypeSpec("Floor and upper pass", 4000, ("floor", "upper"), 2),
}
SEAT_TYPES = {
    "A": TypeSpec("Seat A", 5000, (), 50, "A"),
    "B": TypeSpec("Seat B", 0, ("upper",), 50, "B"),
}
GA_KEYS = sorted(GA_TYPES)
Tickets = tuple[tuple[str, int], ...]  # (ticket type key, quantity) pairs
VENUE = small_venue(rows=2, per_row=5, sections=("Stalls", "Circle"))  # row A: category A, row B: B
SEAT_COUNT = 20

ga_items = st.lists(
    st.tuples(st.sampled_from(GA_KEYS), st.integers(1, 2) | st.integers(1, 5)),
    min_size=1,
    max_size=2,
    unique_by=lambda item: item[0],
).map(tuple)
seat_picks = st.lists(st.integers(0, SEAT_COUNT - 1), min_size=1, max_size=4, unique=True).map(tuple)
extra_item = st.none() | st.tuples(st.sampled_from(GA_KEYS), st.integers(1, 3))
# What one request of a concurrent burst asks for: (tickets, seat indexes).
burst_ask = st.one_of(
    ga_items.map(lambda items: (items, ())),
    st.tuples(extra_item, seat_picks).map(lambda t: ((t[0],) if t[0] else (), t[1])),
)


@dataclass(frozen=True)
class Seat:
    id: int
    section_id: int
    row: str
    number: int
    category: str


@dataclass
class Shared:
    """What all examples of one run share: the app, its loop, an organizer and a venue."""

    harness: Harness
    loop: asyncio.AbstractEventLoop
    org: dict[str, str]
    venue_id: int
    seats: list[Seat]
    section_ids: list[int]

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)


@dataclass(frozen=True)
class HoldAsk:
    """One hold request as the model sees it."""

    tickets: Tickets = ()
    seats: tuple[int, ...] = ()  # seat ids
    best: tuple[int, int | None, str | None] | None = None  # quantity, section id, category
    key: str | None = None


@dataclass(eq=False)
class HoldM:
    n: int
    id: str
    seats: frozenset[int]
    usage: Counter[str]  # quota key -> tickets
    units: int
    total: int
    status: str  # active | ordered | sold | released | expired
    deadline: dt.datetime | None
    order: OrderM | None = None

    def __repr__(self) -> str:
        return f"Hold#{self.n}({self.status}, seats={sorted(self.seats)}, usage={dict(self.usage)})"


@dataclass(eq=False)
class OrderM:
    id: str
    token: str
    hold: HoldM
    provider: str
    status: str  # pending_payment | paid | cancelled | expired | refunded
    payment: str  # pending | succeeded | failed | cancelled | refund_due | refunded
    checkout_url: str | None

    def __repr__(self) -> str:
        return f"Order({self.provider}, {self.status}, payment={self.payment}, {self.hold!r})"


@dataclass
class Prediction:
    status: int
    slug: str | None = None
    quota_left: dict[str, int] = field(default_factory=dict)  # quotas that may refuse, with what is left
    replay_of: str | int | None = None  # the recorded key, or the burst index, whose answer is replayed


def _when(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class InventoryMachine(RuleBasedStateMachine):
    shared: ClassVar[Shared]

    def __init__(self) -> None:
        super().__init__()
        self.h = self.shared.harness
        self.seats = {s.id: s for s in self.shared.seats}
        self.seat_list = self.shared.seats
        self.holds: list[HoldM] = []
        self.orders: list[OrderM] = []
        self.event_id = 0
        self.capacity: dict[str, int] = {}
        self.quota_ids: dict[str, int] = {}
        self.type_ids: dict[str, int] = {}
        self.key_count = 0
        self.hold_keys: dict[str, tuple[HoldAsk, dict[str, Any]]] = {}  # answered 201, so replayed
        self.keyed_asks: list[HoldAsk] = []
        self.order_keys: dict[str, tuple[HoldM, str, dict[str, Any]]] = {}
        self.keyed_orders: list[tuple[str, HoldM, str]] = []

    # --- plumbing -----------------------------------------------------------------------------------

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.shared.run(self.h.client.request(method, url, **kwargs))
        return response

    def ok(self, method: str, url: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, url, **kwargs)
        assert response.status_code == expect, (method, url, response.status_code, response.text)
        return response.json()

    @property
    def now(self) -> dt.datetime:
        return self.h.clock.now()

    def new_key(self) -> str:
        self.key_count += 1
        return f"event-{self.event_id}-{self.key_count}"

    def pick(self, data: st.DataObject, pool: list[Any], fallback: list[Any], label: str) -> Any:
        """Mostly something the operation applies to, sometimes anything (to see it refused)."""
        use_pool = pool and data.draw(st.integers(0, 3), label=f"{label} in any state") > 0
        return data.draw(st.sampled_from(pool if use_pool else fallback), label=label)

    # --- the model ----------------------------------------------------------------------------------

    def live(self, hold: HoldM) -> bool:
        """Whether the hold takes inventory right now (a passed deadline frees it even before a sweep)."""
        if hold.status == "sold":
            return True
        return hold.status in LIVE and hold.deadline is not None and hold.deadline > self.now

    def seat_states(self) -> dict[int, str]:
        states = dict.fromkeys(self.seats, "free")
        for hold in self.holds:
            if self.live(hold):
                for seat in hold.seats:
                    assert states[seat] == "free", "the model put a seat in two holds"
                    states[seat] = "sold" if hold.status == "sold" else "held"
        return states

    def quota_counts(self) -> dict[str, tuple[int, int, int]]:
        """quota key -> (held, sold, available)."""
        held: Counter[str] = Counter()
        sold: Counter[str] = Counter()
        for hold in self.holds:
            if hold.status == "sold":
                sold.update(hold.usage)
            elif self.live(hold):
                held.update(hold.usage)
        return {q: (held[q], sold[q], cap - held[q] - sold[q]) for q, cap in self.capacity.items()}

    def available(self) -> dict[str, int]:
        return {q: counts[2] for q, counts in self.quota_counts().items()}

    def sweep_model(self) -> int:
        due = [
            h for h in self.holds if h.status in LIVE and h.deadline is not None and h.deadline <= self.now
        ]
        for hold in due:
            hold.status, hold.deadline = "expired", None
            order = hold.order
            if order is not None and order.status == "pending_payment":
                order.status = "expired"
                if order.payment == "pending":
                    order.payment = "cancelled"
        return len(due)

    def api_hold_status(self, hold: HoldM) -> str:
        if hold.status in LIVE and hold.deadline is not None and hold.deadline <= self.now:
            return "expired"
        return hold.status

    def usage_of(self, tickets: Tickets, seats: list[int]) -> tuple[Counter[str], int, int]:
        usage: Counter[str] = Counter()
        total = 0
        for key, quantity in tickets:
            spec = GA_TYPES[key]
            total += spec.price * quantity
            for quota in spec.quotas:
                usage[quota] += quantity
        for seat_id in seats:
            spec = SEAT_TYPES[self.seats[seat_id].category]
            total += spec.price
            for quota in spec.quotas:
                usage[quota] += 1
        return usage, total, sum(q for _, q in tickets) + len(seats)

    def predict(self, ask: HoldAsk, states: dict[int, str], available: dict[str, int]) -> Prediction:
        """The allocator's answer to tickets and chosen seats; it checks seats, then limits, then quotas."""
        assert ask.best is None
        if any(states[s] != "free" for s in ask.seats):
            return Prediction(409, "seats-taken")
        if any(q > GA_TYPES[k].max_per_order for k, q in ask.tickets):
            return Prediction(422, "invalid-request")
        usage, _, _ = self.usage_of(ask.tickets, list(ask.seats))
        short = {q: available[q] for q, n in usage.items() if n > available[q]}
        return Prediction(409, None, short) if short else Prediction(201)

    def refusal_matches(self, response: httpx.Response, prediction: Prediction) -> bool:
        if response.status_code != prediction.status:
            return False
        problem = response.json()
        if prediction.slug is not None and not problem["type"].endswith("/" + prediction.slug):
            return False
        if prediction.quota_left:
            quota_keys = {v: k for k, v in self.quota_ids.items()}
            refused = quota_keys.get(problem.get("quota_id"))
            if refused not in prediction.quota_left:
                return False
            left = prediction.quota_left[refused]
            slug = "/sold-out" if left == 0 else "/quota-exceeded"
            return bool(problem["available"] == left and problem["type"].endswith(slug))
        return True

    def check_refusal(self, response: httpx.Response, prediction: Prediction) -> None:
        assert self.refusal_matches(response, prediction), (prediction, response.status_code, response.text)

    def add_hold(self, body: dict[str, Any], tickets: Tickets, seats: list[int]) -> HoldM:
        usage, total, units = self.usage_of(tickets, seats)
        assert body["status"] == "active" and body["event_id"] == self.event_id
        assert body["total_minor"] == total, (body, total)
        assert _when(body["expires_at"]) == self.now + HOLD_TTL
        assert sorted(ln["seat_id"] for ln in body["lines"] if ln["seat_id"] is not None) == sorted(seats)
        ga_lines = {ln["ticket_type_id"]: ln["quantity"] for ln in body["lines"] if ln["seat_id"] is None}
        assert ga_lines == {self.type_ids[k]: q for k, q in tickets}
        hold = HoldM(len(self.holds), body["id"], frozenset(seats), usage, units, total, "active", None)
        hold.deadline = self.now + HOLD_TTL
        self.holds.append(hold)
        assert all(n >= 0 for n in self.available().values()), "a hold went past a quota"
        return hold

    def check_hold(self, hold: HoldM) -> None:
        body = self.ok("GET", f"/api/v1/holds/{hold.id}")
        assert body["status"] == self.api_hold_status(hold), (body["status"], hold)
        assert _when(body["expires_at"]) == hold.deadline, (body["expires_at"], hold)

    def check_order(self, order: OrderM) -> None:
        body = self.ok("GET", f"/api/v1/orders/{order.id}", headers={"X-Order-Token": order.token})
        assert body["status"] == order.status, (body["status"], order)
        assert body["payment"]["status"] == order.payment, (body["payment"], order)
        tickets = body["tickets"]
        if order.status in ("paid", "refunded"):
            assert len(tickets) == order.hold.units
            expected = "valid" if order.status == "paid" else "void"
            assert {t["status"] for t in tickets} == {expected}
            assert {t["seat_id"] for t in tickets if t["seat_id"] is not None} == set(order.hold.seats)
        else:
            assert tickets == []
        self.check_hold(order.hold)

    # --- setup --------------------------------------------------------------------------------------

    @initialize(floor=st.integers(2, 8), upper=st.integers(1, 6))
    def new_event(self, floor: int, upper: int) -> None:
        # Leave nothing due from earlier examples, so sweep counts are this event's alone.
        self.h.clock.advance(ORDER_TTL.total_seconds() + 60)
        self.shared.run(self.h.state.sweeper.run_once())
        org = self.shared.org
        self.event_id = self.shared.run(self.h.event(org, self.shared.venue_id))
        base = f"/api/v1/organizer/events/{self.event_id}"
        self.capacity = {"floor": floor, "upper": upper}
        for key, capacity in self.capacity.items():
            quota = self.ok(
                "POST", f"{base}/quotas", 201, headers=org, json={"name": key, "capacity": capacity}
            )
            self.quota_ids[key] = quota["id"]
        for key, spec in [*GA_TYPES.items(), *SEAT_TYPES.items()]:
            body = {
                "name": spec.name,
                "kind": "seated" if spec.category else "admission",
                "category": spec.category,
                "price_minor": spec.price,
                "max_per_order": spec.max_per_order,
                "quota_ids": [self.quota_ids[q] for q in spec.quotas],
            }
            self.type_ids[key] = self.ok("POST", f"{base}/ticket-types", 201, headers=org, json=body)["id"]

    # --- holds --------------------------------------------------------------------------------------

    def hold_body(self, ask: HoldAsk) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if ask.tickets:
            body["tickets"] = [{"ticket_type_id": self.type_ids[k], "quantity": q} for k, q in ask.tickets]
        if ask.seats:
            body["seat_ids"] = list(ask.seats)
        if ask.best is not None:
            n, section_id, category = ask.best
            body["best_available"] = {"quantity": n, "section_id": section_id, "category": category}
        return body

    def post_hold(self, ask: HoldAsk) -> httpx.Response:
        headers = {"Idempotency-Key": ask.key} if ask.key else {}
        return self.call(
            "POST", f"/api/v1/events/{self.event_id}/holds", json=self.hold_body(ask), headers=headers
        )

    def replay_prediction(self, ask: HoldAsk, first: HoldAsk, replay_of: str | int) -> Prediction:
        same = replace(first, key=None) == replace(ask, key=None)
        return Prediction(201, replay_of=replay_of) if same else Prediction(422, "idempotency-key-reused")

    def send_hold(self, ask: HoldAsk) -> None:
        """One hold request, its answer checked against the model, and the model updated."""
        self.sweep_model()  # the hold writer expires what is due before it allocates
        if ask.key is not None and ask not in self.keyed_asks:
            self.keyed_asks.append(ask)
        states, available = self.seat_states(), self.available()
        if ask.key in self.hold_keys:
            first, answer = self.hold_keys[ask.key]
            prediction = self.replay_prediction(ask, first, ask.key)
            response = self.post_hold(ask)
            if prediction.status == 201:
                assert response.status_code == 201 and response.headers.get(REPLAYED) == "true", response.text
                assert response.json() == answer, (response.json(), answer)
            else:
                self.check_refusal(response, prediction)
            return
        if ask.best is not None:
            self.send_best_available(ask, states, available)
            return
        prediction = self.predict(ask, states, available)
        response = self.post_hold(ask)
        if prediction.status != 201:
            self.check_refusal(response, prediction)
            if prediction.slug == "seats-taken":
                taken = {s for s in ask.seats if states[s] != "free"}
                assert set(response.json()["seat_ids"]) == taken, response.text
            return
        assert response.status_code == 201, (prediction, response.text)
        self.check_hold(self.add_hold(response.json(), ask.tickets, list(ask.seats)))
        if ask.key is not None:
            self.hold_keys[ask.key] = (ask, response.json())

    def blocks(
        self, n: int, section_id: int | None, category: str | None, states: dict[int, str]
    ) -> list[list[int]]:
        """Every run of n adjacent free seats in one row that the request allows."""
        rows: dict[tuple[int, str], list[Seat]] = {}
        for seat in self.seat_list:
            if section_id is None or seat.section_id == section_id:
                rows.setdefault((seat.section_id, seat.row), []).append(seat)
        found = []
        for members in rows.values():
            members.sort(key=lambda s: s.number)
            for i in range(len(members) - n + 1):
                block = members[i : i + n]
                if all(
                    states[s.id] == "free"
                    and (category is None or s.category == category)
                    and s.number == block[0].number + j
                    for j, s in enumerate(block)
                ):
                    found.append([s.id for s in block])
        return found

    def send_best_available(self, ask: HoldAsk, states: dict[int, str], available: dict[str, int]) -> None:
        assert ask.best is not None
        n, section_id, category = ask.best
        chosen_first = list(ask.seats)
        if any(states[s] != "free" for s in chosen_first):
            self.check_refusal(self.post_hold(ask), Prediction(409, "seats-taken"))
            return
        # The search skips the seats asked for by id; the whole hold then needs room in the quotas.
        candidates = self.blocks(n, section_id, category, {**states, **dict.fromkeys(chosen_first, "held")})
        short_by = {}
        fitting = []
        for block in candidates:
            usage = self.usage_of((), chosen_first + block)[0]
            short = {q: available[q] for q, k in usage.items() if k > available[q]}
            short_by.update(short)
            if not short:
                fitting.append(sorted(block))
        response = self.post_hold(ask)
        if not candidates:
            self.check_refusal(response, Prediction(409, "sold-out"))
            assert "quota_id" not in response.json()
            return
        if len(fitting) == len(candidates):
            assert response.status_code == 201, (candidates, response.text)
        if response.status_code != 201:
            # The best block may need more of a quota than is left, even when another block would fit.
            self.check_refusal(response, Prediction(409, None, short_by))
            return
        lines = [ln["seat_id"] for ln in response.json()["lines"]]
        assert lines[: len(chosen_first)] == chosen_first, (lines, chosen_first)
        block = sorted(lines[len(chosen_first) :])
        assert block in fitting, (block, fitting)
        self.check_hold(self.add_hold(response.json(), ask.tickets, chosen_first + block))
        if ask.key is not None:
            self.hold_keys[ask.key] = (ask, response.json())

    @rule(items=ga_items, keyed=st.booleans())
    def hold_tickets(self, items: Tickets, keyed: bool) -> None:
        self.send_hold(HoldAsk(tickets=items, key=self.new_key() if keyed else None))

    @rule(picks=seat_picks, extra=extra_item, keyed=st.booleans())
    def hold_seats(self, picks: tuple[int, ...], extra: tuple[str, int] | None, keyed: bool) -> None:
        seats = tuple(self.seat_list[i].id for i in picks)
        tickets = (extra,) if extra else ()
        self.send_hold(HoldAsk(tickets=tickets, seats=seats, key=self.new_key() if keyed else None))

    @rule(
        n=st.integers(1, 4),
        section=st.none() | st.integers(0, 1),
        category=st.none() | st.sampled_from(["A", "B"]),
        with_seat=st.none() | st.integers(0, SEAT_COUNT - 1),
        keyed=st.booleans(),
    )
    def hold_best_available(
        self, n: int, section: int | None, category: str | None, with_seat: int | None, keyed: bool
    ) -> None:
        section_id = None if section is None else self.shared.section_ids[section]
        seats = () if with_seat is None else (self.seat_list[with_seat].id,)
        key = self.new_key() if keyed else None
        self.send_hold(HoldAsk(seats=seats, best=(n, section_id, category), key=key))

    @precondition(lambda self: self.keyed_asks)
    @rule(data=st.data(), same_request=st.booleans())
    def retry_hold(self, data: st.DataObject, same_request: bool) -> None:
        """A client retries with its Idempotency-Key: a stored answer is replayed, never held twice."""
        ask = data.draw(st.sampled_from(self.keyed_asks), label="retried")
        if not same_request:
            other = (("standing", 1),) if ask.tickets != (("standing", 1),) else (("guest", 1),)
            ask = HoldAsk(tickets=other, key=ask.key)
        self.send_hold(ask)

    @rule(burst=st.lists(st.tuples(burst_ask, st.sampled_from([None, None, 0, 1])), min_size=2, max_size=3))
    def hold_at_once(self, burst: list[tuple[tuple[Tickets, tuple[int, ...]], int | None]]) -> None:
        """Several buyers at once: the answers must be those of the requests in some order."""
        keys = [self.new_key(), self.new_key()]
        asks = [
            HoldAsk(
                tickets=tickets,
                seats=tuple(self.seat_list[i].id for i in picks),
                key=None if slot is None else keys[slot],
            )
            for (tickets, picks), slot in burst
        ]
        self.sweep_model()
        for ask in asks:
            if ask.key is not None and ask not in self.keyed_asks:
                self.keyed_asks.append(ask)

        async def send_all() -> list[httpx.Response]:
            return list(
                await asyncio.gather(
                    *(
                        self.h.client.post(
                            f"/api/v1/events/{self.event_id}/holds",
                            json=self.hold_body(ask),
                            headers={"Idempotency-Key": ask.key} if ask.key else {},
                        )
                        for ask in asks
                    )
                )
            )

        responses: list[httpx.Response] = self.shared.run(send_all())
        assert any(
            self.explains(asks, responses, self.simulate(asks, order))
            for order in itertools.permutations(range(len(asks)))
        ), [(a, r.status_code, r.text) for a, r in zip(asks, responses, strict=True)]
        for i, (ask, response) in enumerate(zip(asks, responses, strict=True)):
            if response.status_code == 201 and response.headers.get(REPLAYED) != "true":
                self.check_hold(self.add_hold(response.json(), ask.tickets, list(ask.seats)))
                if ask.key is not None:
                    assert ask.key not in self.hold_keys, i
                    self.hold_keys[ask.key] = (ask, response.json())

    def simulate(self, asks: list[HoldAsk], order: tuple[int, ...]) -> list[Prediction]:
        states, available = self.seat_states(), self.available()
        predictions: list[Prediction] = [Prediction(0)] * len(asks)
        first_in_burst: dict[str, int] = {}
        for i in order:
            ask = asks[i]
            if ask.key in self.hold_keys:
                predictions[i] = self.replay_prediction(ask, self.hold_keys[ask.key][0], ask.key)
                continue
            if ask.key in first_in_burst:
                first = first_in_burst[ask.key]
                predictions[i] = self.replay_prediction(ask, asks[first], first)
                continue
            predictions[i] = prediction = self.predict(ask, states, available)
            if prediction.status == 201:
                states.update(dict.fromkeys(ask.seats, "held"))
                for quota, n in self.usage_of(ask.tickets, list(ask.seats))[0].items():
                    available[quota] -= n
                if ask.key is not None:
                    first_in_burst[ask.key] = i
        return predictions

    def explains(
        self, asks: list[HoldAsk], responses: list[httpx.Response], predictions: list[Prediction]
    ) -> bool:
        return all(self.answer_matches(asks, responses, predictions, i) for i in range(len(asks)))

    def answer_matches(
        self, asks: list[HoldAsk], responses: list[httpx.Response], predictions: list[Prediction], i: int
    ) -> bool:
        response, prediction = responses[i], predictions[i]
        if prediction.status != 201:
            return self.refusal_matches(response, prediction)
        if response.status_code != 201:
            return False
        replayed = response.headers.get(REPLAYED) == "true"
        if prediction.replay_of is None:
            seats = [ln["seat_id"] for ln in response.json()["lines"] if ln["seat_id"] is not None]
            return not replayed and sorted(seats) == sorted(asks[i].seats)
        if isinstance(prediction.replay_of, str):
            return replayed and bool(response.json() == self.hold_keys[prediction.replay_of][1])
        first = responses[prediction.replay_of]
        return replayed and first.status_code == 201 and bool(response.json()["id"] == first.json()["id"])

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release_hold(self, data: st.DataObject) -> None:
        active = [h for h in self.holds if h.status == "active"]
        hold = self.pick(data, active, self.holds, "hold")
        response = self.call("DELETE", f"/api/v1/holds/{hold.id}")
        if self.api_hold_status(hold) in ("released", "expired"):
            assert response.status_code == 410, response.text
        elif hold.status != "active":
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "released"
            hold.status, hold.deadline = "released", None
        self.check_hold(hold)

    # --- time ---------------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 60, 299, 300, 599, 600, 601, 899, 900, 901]) | st.integers(1, 1200))
    def advance_clock(self, seconds: int) -> None:
        self.h.clock.advance(seconds)

    def coming_deadlines(self) -> list[dt.datetime]:
        return sorted({h.deadline for h in self.holds if self.live(h) and h.deadline is not None})

    @precondition(lambda self: self.coming_deadlines())
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 0, 1]))
    def advance_to_deadline(self, data: st.DataObject, offset: int) -> None:
        """Moves the clock to just before, exactly onto or just past a hold's or an order's deadline."""
        deadline = data.draw(st.sampled_from(self.coming_deadlines()), label="deadline")
        self.h.clock.advance((deadline - self.now).total_seconds() + offset)

    @rule()
    def sweep(self) -> None:
        expected = self.sweep_model()
        assert self.shared.run(self.h.state.sweeper.run_once()) == expected

    # --- orders -------------------------------------------------------------------------------------

    @precondition(lambda self: self.holds)
    @rule(
        data=st.data(),
        provider=st.sampled_from(["matching", "matching", "matching", "test", "free"]),
        pay_now=st.sampled_from([None, "succeeded", "succeeded", "failed"]),
        keyed=st.booleans(),
    )
    def place_order(self, data: st.DataObject, provider: str, pay_now: str | None, keyed: bool) -> None:
        active = [h for h in self.holds if h.status == "active"]
        hold = self.pick(data, active, self.holds, "hold")
        if provider == "matching":
            provider = "free" if hold.total == 0 else "test"
        order = self.send_order(hold, provider, self.new_key() if keyed else None)
        if order is not None and pay_now and provider == "test":
            self.checkout(order, pay_now)

    @precondition(lambda self: self.keyed_orders)
    @rule(data=st.data(), same_request=st.booleans())
    def retry_order(self, data: st.DataObject, same_request: bool) -> None:
        key, hold, provider = data.draw(st.sampled_from(self.keyed_orders), label="retried")
        if not same_request:
            other = data.draw(st.sampled_from(self.holds), label="other hold")
            if other is hold:
                provider = "free" if provider == "test" else "test"
            hold = other
        self.send_order(hold, provider, key)

    def send_order(self, hold: HoldM, provider: str, key: str | None) -> OrderM | None:
        body = {
            "hold_id": hold.id,
            "buyer_name": "Ada",
            "buyer_email": "ada@example.com",
            "payment_provider": provider,
        }
        headers = {"Idempotency-Key": key} if key else {}
        now = self.now
        response = self.call("POST", "/api/v1/orders", json=body, headers=headers)
        if key is not None and (key, hold, provider) not in self.keyed_orders:
            self.keyed_orders.append((key, hold, provider))
        if key in self.order_keys:
            first_hold, first_provider, answer = self.order_keys[key]
            if (first_hold, first_provider) == (hold, provider):
                assert response.status_code == 201 and response.headers.get(REPLAYED) == "true", response.text
                assert response.json() == answer, (response.json(), answer)
            else:
                self.check_refusal(response, Prediction(422, "idempotency-key-reused"))
            return None
        if self.api_hold_status(hold) in ("released", "expired"):
            assert response.status_code == 410, response.text
        elif hold.status != "active":
            assert response.status_code == 409, response.text
        elif (provider == "free") != (hold.total == 0):
            assert response.status_code == 422, response.text
        else:
            assert response.status_code == 201, response.text
            out = response.json()
            payment = out["payment"]
            action = payment["next_action"]
            order = OrderM(
                out["id"], out["access_token"], hold, provider, out["status"], payment["status"], None
            )
            if provider == "free":
                assert (order.status, order.payment, action) == ("paid", "succeeded", None)
                assert len(out["tickets"]) == hold.units
                hold.status, hold.deadline = "sold", None
            else:
                assert (order.status, order.payment) == ("pending_payment", "pending")
                assert _when(out["expires_at"]) == now + ORDER_TTL
                order.checkout_url = action["url"]
                hold.status, hold.deadline = "ordered", now + ORDER_TTL
            hold.order = order
            self.orders.append(order)
            if key is not None:
                self.order_keys[key] = (hold, provider, out)
            self.check_order(order)
            return order
        self.check_hold(hold)
        return None

    def checkout(self, order: OrderM, outcome: str) -> None:
        """The buyer completes the test provider's checkout; its webhook then settles the order."""
        assert order.checkout_url is not None
        response = self.call("POST", order.checkout_url, json={"outcome": outcome})
        if order.status != "pending_payment" or order.payment not in ("pending", "failed"):
            assert response.status_code == 409, response.text
            self.check_order(order)
            return
        assert response.status_code == 202, response.text
        self.shared.run(self.h.state.payments.test.drain())
        hold = order.hold
        if outcome == "failed":
            if order.payment == "pending":
                order.payment = "failed"
        elif hold.deadline is not None and hold.deadline <= self.now:
            order.payment = "refund_due"  # paid too late: the money goes back, the seats stay free
        else:
            order.status, order.payment = "paid", "succeeded"
            hold.status, hold.deadline = "sold", None
        self.check_order(order)

    @precondition(lambda self: any(o.provider == "test" for o in self.orders))
    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "succeeded", "failed"]))
    def pay(self, data: st.DataObject, outcome: str) -> None:
        payable = [o for o in self.orders if o.provider == "test"]
        pending = [o for o in payable if o.status == "pending_payment" and o.payment in ("pending", "failed")]
        self.checkout(self.pick(data, pending, payable, "order"), outcome)

    @precondition(lambda self: any(o.status == "pending_payment" and self.live(o.hold) for o in self.orders))
    @rule(
        data=st.data(),
        offset=st.sampled_from([-1, 0, 1, 120]),
        outcome=st.sampled_from(["succeeded", "failed"]),
    )
    def pay_at_deadline(self, data: st.DataObject, offset: int, outcome: str) -> None:
        """The buyer finishes the checkout right around the moment the unpaid order runs out."""
        open_orders = [o for o in self.orders if o.status == "pending_payment" and self.live(o.hold)]
        order = data.draw(st.sampled_from(open_orders), label="order")
        assert order.hold.deadline is not None
        self.h.clock.advance((order.hold.deadline - self.now).total_seconds() + offset)
        self.checkout(order, outcome)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), by_organizer=st.booleans())
    def cancel_order(self, data: st.DataObject, by_organizer: bool) -> None:
        pending = [o for o in self.orders if o.status == "pending_payment"]
        order = self.pick(data, pending, self.orders, "order")
        if by_organizer:
            response = self.call(
                "POST", f"/api/v1/organizer/orders/{order.id}/cancel", headers=self.shared.org
            )
        else:
            url = f"/api/v1/orders/{order.id}/cancel"
            response = self.call("POST", url, headers={"X-Order-Token": order.token})
        hold = order.hold
        if order.status == "cancelled":
            assert response.status_code == 200, response.text
        elif order.status == "paid":
            assert response.status_code == 409, response.text
        elif order.status != "pending_payment" or (hold.deadline is not None and hold.deadline <= self.now):
            assert response.status_code == 410, response.text
        else:
            assert response.status_code == 200, response.text
            order.status = "cancelled"
            if order.payment == "pending":
                order.payment = "cancelled"
            hold.status, hold.deadline = "released", None
        self.check_order(order)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def refund_order(self, data: st.DataObject) -> None:
        paid = [o for o in self.orders if o.status == "paid"]
        order = self.pick(data, paid, self.orders, "order")
        response = self.call("POST", f"/api/v1/organizer/orders/{order.id}/refund", headers=self.shared.org)
        if order.status == "refunded":
            assert response.status_code == 200, response.text
        elif order.status != "paid":
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 200, response.text
            order.status, order.payment = "refunded", "refunded"
            order.hold.status = "released"
        self.check_order(order)

    # --- after every step ---------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        if not self.event_id:
            return
        states = self.seat_states()
        seat_map = self.ok("GET", f"/api/v1/events/{self.event_id}/seats")
        assert {s["id"]: s["state"] for s in seat_map["seats"]} == states

        counts = self.quota_counts()
        avail = self.ok("GET", f"/api/v1/events/{self.event_id}/availability")
        got_quotas = {
            q["quota_id"]: (q["capacity"], q["held"], q["sold"], q["available"]) for q in avail["quotas"]
        }
        assert got_quotas == {self.quota_ids[k]: (self.capacity[k], *counts[k]) for k in self.capacity}, (
            avail["quotas"]
        )

        free_by_category = Counter(self.seats[s].category for s, state in states.items() if state == "free")
        expected_types = {}
        for key, spec in [*GA_TYPES.items(), *SEAT_TYPES.items()]:
            limits = [counts[q][2] for q in spec.quotas]
            if spec.category:
                limits.append(free_by_category[spec.category])
            expected_types[self.type_ids[key]] = max(min(limits), 0)
        assert {t["ticket_type_id"]: t["available"] for t in avail["ticket_types"]} == expected_types

        expected_sections = {
            sid: (
                sum(1 for s in self.seat_list if s.section_id == sid),
                sum(1 for s in self.seat_list if s.section_id == sid and states[s.id] == "free"),
            )
            for sid in self.shared.section_ids
        }
        assert {s["section_id"]: (s["seats"], s["available"]) for s in avail["sections"]} == expected_sections

        self.shared.run(self.h.check_invariants(self.event_id))


async def _shared(harness: Harness) -> Shared:
    org = await harness.organizer()
    venue = await harness.ok("POST", "/api/v1/organizer/venues", 201, json=VENUE, headers=org)
    listed = await harness.ok("GET", f"/api/v1/organizer/venues/{venue['id']}/seats", headers=org)
    seats = [Seat(s["id"], s["section_id"], s["row"], s["number"], s["category"]) for s in listed]
    assert len(seats) == SEAT_COUNT
    sections = [s["id"] for s in venue["sections"]]
    return Shared(harness, asyncio.get_running_loop(), org, venue["id"], seats, sections)


async def test_inventory_follows_the_model(harness: Harness) -> None:
    shared = await _shared(harness)
    machine = type("InventoryMachine", (InventoryMachine,), {"shared": shared})
    config = hypothesis_settings(
        max_examples=int(os.environ.get("ADMITONE_MODEL_EXAMPLES", "40")),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
