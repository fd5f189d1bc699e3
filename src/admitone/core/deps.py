"""The process's resources, built in the lifespan, and the ``Annotated`` aliases that reach them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.core.settings import Settings

if TYPE_CHECKING:
    from admitone.analytics.runtime import Analytics
    from admitone.inventory.engine import InventoryEngine
    from admitone.inventory.sweeper import Sweeper
    from admitone.live.fanout import RedisFanout
    from admitone.live.hub import LiveHub
    from admitone.mail.sender import MailSender
    from admitone.orders.payments import Payments
    from admitone.outbox.bus import InProcessBus
    from admitone.outbox.consumers import ConsumerRunner
    from admitone.outbox.kafka import KafkaConsumerLoop
    from admitone.outbox.relay import OutboxRelay
    from admitone.webhooks.sender import WebhookSender


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
    ticket_key: bytes  # signs and verifies ticket QR payloads (checkin/tokens.py)
    # The relay of the stream lane: to the durable consumers in process, or to Kafka; None
    # when the lane runs in `admitone worker` processes (ADMITONE_STREAM_WORKER).
    stream_relay: OutboxRelay | None
    # With Kafka: one consumer loop per durable consumer.
    kafka_loops: list[KafkaConsumerLoop] = field(default_factory=list)
    # Sends webhook deliveries in the background (webhooks/sender.py); routes wake it.
    webhooks: WebhookSender | None = None
    # Sends order-confirmation e-mails (mail/sender.py); the resend route wakes it.
    mail: MailSender | None = None
    # Analytics: lookups, the stream consumer and the live dashboard broadcaster (analytics/runtime.py).
    analytics: Analytics | None = None


async def get_state(request: Request) -> AppState:
    # async: a plain function dependency would be sent to the thread pool on every request
    state: AppState = request.app.state.admitone
    return state


StateDep = Annotated[AppState, Depends(get_state)]
