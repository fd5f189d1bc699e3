"""The process's resources, built in the lifespan, and the ``Annotated`` aliases that reach them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.core.settings import Settings

if TYPE_CHECKING:
    from admitone.inventory.engine import InventoryEngine
    from admitone.inventory.sweeper import Sweeper
    from admitone.live.fanout import RedisFanout
    from admitone.live.hub import LiveHub
    from admitone.orders.payments import Payments
    from admitone.outbox.bus import InProcessBus
    from admitone.outbox.consumers import ConsumerRunner
    from admitone.outbox.relay import OutboxRelay


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    engine: InventoryEngine
    payments: Payments
    sweeper: Sweeper
    secret_key: str
    bus: InProcessBus
    relay: OutboxRelay
    hub: LiveHub
    fanout: RedisFanout | None
    consumers: list[ConsumerRunner]


async def get_state(request: Request) -> AppState:
    # async: a plain function dependency would be sent to the thread pool on every request
    state: AppState = request.app.state.admitone
    return state


StateDep = Annotated[AppState, Depends(get_state)]
