"""The app factory and its lifespan: every resource of a process is built and closed here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from admitone import __version__
from admitone.analytics import api as analytics_api
from admitone.analytics.runtime import Analytics
from admitone.chat import api as chat_api
from admitone.chat import live as chat_live
from admitone.checkin import api as checkin_api
from admitone.checkin.tokens import ticket_signing_key
from admitone.core.clock import Clock, SystemClock
from admitone.core.db import Database
from admitone.core.deps import AppState, StateDep
from admitone.core.errors import Unavailable, install_error_handlers, problems
from admitone.core.middleware import BodySizeLimit
from admitone.core.params import describe_parameters
from admitone.core.runtime import tune_garbage_collector
from admitone.core.settings import Settings
from admitone.core.worker import builtin_consumers
from admitone.events import api as events_api
from admitone.inventory import api as inventory_api
from admitone.inventory.engine import InventoryEngine
from admitone.inventory.fastpath import HoldFastPath
from admitone.inventory.sweeper import Sweeper
from admitone.live import api as live_api
from admitone.live.fanout import RedisFanout
from admitone.live.hub import LiveHub
from admitone.live.service import snapshot_loader
from admitone.mail import api as mail_api
from admitone.mail.sender import MailSender
from admitone.orders import api as orders_api
from admitone.orders.payments import Payments, TestProvider, webhook_secret
from admitone.organizers import api as organizers_api
from admitone.organizers.auth import current_caller
from admitone.outbox.asyncapi import asyncapi_document
from admitone.outbox.bus import InProcessBus
from admitone.outbox.consumers import StreamConsumer
from admitone.outbox.lane import StreamLane
from admitone.outbox.relay import OutboxRelay
from admitone.web import api as web_api
from admitone.webhooks import api as webhooks_api
from admitone.webhooks.sender import WebhookSender, build_client

log = logging.getLogger(__name__)

DESCRIPTION = """
Ticketing for on-sales where demand far exceeds supply.

* **Buyers** browse published events, check availability, **hold** seats or general-admission tickets for
  a few minutes, turn the hold into an **order** and pay it; tickets are issued on payment.
* **Organizers** authenticate with an API key (`Authorization: Bearer adm_...`, from
  `admitone organizer create NAME`) and manage venues, seat maps, events, ticket types, quotas and orders.

Every creating `POST` accepts an `Idempotency-Key` header. Errors are `application/problem+json` (RFC 9457).
"""

TAGS = [
    {"name": "Events", "description": "Published events and their ticket types."},
    {"name": "Holds and availability", "description": "What is left, and holding it. The hot path."},
    {"name": "Orders", "description": "From hold to order; the buyer reads it with its access token."},
    {"name": "Payments", "description": "The test payment provider's checkout and its signed webhook."},
    {"name": "Organizer", "description": "Who the API key belongs to."},
    {"name": "Organizer: venues", "description": "Venues and their seat maps."},
    {"name": "Organizer: events", "description": "Events, quotas and ticket types."},
    {"name": "Organizer: orders", "description": "Orders of your events: read, cancel, refund."},
    {"name": "Chat", "description": "The event chat: join with a name, read history, post (rate limited)."},
    {"name": "Organizer: chat", "description": "Announcements and moderation: delete, mute, ban, slow mode."},
    {
        "name": "Organizer: webhooks",
        "description": "Signed HTTP callbacks of your events' domain events: endpoints, deliveries.",
    },
    {
        "name": "Organizer: e-mails",
        "description": "Order confirmations sent to buyers: their state, and resending a failed one.",
    },
    {
        "name": "Organizer: check-in",
        "description": "Admitting tickets at the door: scan a QR code or type a code; see who is in.",
    },
    {
        "name": "Organizer: analytics",
        "description": "Sales, revenue, holds, conversion and sell-through of your events, their history, "
        "and the live dashboard socket `/api/v1/organizer/events/{id}/analytics/live` (first message "
        '`{"type": "auth", "api_key": "adm_..."}`; close codes 4401 bad key, 4404 not your event, '
        "4008 too slow).",
    },
    {
        "name": "Live",
        "description": "Live availability and seat states: WebSocket `/api/v1/events/{id}/live` and "
        "Server-Sent Events. Messages: `snapshot`, then `changes`, each with `seq`; resume with `last_seq`. "
        "Close code 4008: the client fell behind and should reconnect with its last `seq`.",
    },
    {"name": "Health", "description": "Liveness and readiness for load balancers."},
]


class Health(BaseModel):
    status: str = Field(
        description="`ok` when the process is up; `ready` when it can serve.", examples=["ready"]
    )
    version: str = Field(description="The admitone version this process runs.", examples=["0.1.0"])


def _operation_id(route: APIRoute) -> str:
    return route.name


class AdmitoneApp(FastAPI):
    """FastAPI, with the two hot paths served ahead of the framework's own middleware.

    Well-formed hold requests (``inventory/fastpath.py``) and live seat-map WebSockets
    (``live/api.py``) are answered before FastAPI's and Starlette's layers (error and telemetry
    wrappers, body limits, routing), which cost more per request than the work behind a hold, and keep a
    frame per layer alive for as long as a WebSocket stays open. Each fast path checks its own input and
    passes everything it does not serve on to the full app, which answers as usual.
    """

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_fast_path = HoldFastPath(self._framework, limit=max_body_bytes)
        self._hot: ASGIApp = live_api.LiveSocketFastPath(self.hold_fast_path)

    async def _framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await self._hot(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    self_transport: bool = False,
    extra_consumers: Sequence[StreamConsumer] = (),
) -> FastAPI:
    """Builds the app. ``self_transport`` makes the test payment provider call this app in-process;
    ``extra_consumers`` are durable consumers run besides the built-in ones (tests, plug-ins)."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    if settings.stream_worker and extra_consumers:
        raise ValueError(
            "durable consumers run in the stream lane, which ADMITONE_STREAM_WORKER leaves to `admitone "
            "worker` processes: give them to core.worker.Worker instead"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings)
        secret_key = settings.resolved_secret_key()
        transport = httpx.ASGITransport(app=app) if self_transport else None
        client = httpx.AsyncClient(base_url=settings.public_url, transport=transport, timeout=10)
        test_provider = TestProvider(webhook_secret(secret_key), client)
        engine = InventoryEngine(db, settings, clock)
        sweeper = Sweeper(db, clock, settings.sweep_interval_seconds)
        bus = InProcessBus()
        hub = LiveHub(
            snapshot_loader(db, clock, [chat_live.snapshot]),
            coalesce_seconds=settings.live_coalesce_ms / 1000,
            queue_size=settings.live_queue_size,
            history_size=settings.live_history,
        )
        chat_live.install(hub)
        fanout = RedisFanout(settings.redis_url, hub) if settings.redis_url else None
        if fanout is not None:
            hub.fanout = fanout
            bus.subscribe("live", fanout.publish)
        else:
            bus.subscribe("live", hub.deliver)
        webhook_client = build_client(settings)
        webhook_sender = WebhookSender(db, settings, webhook_client)
        mail_sender = MailSender(db, settings, clock, secret_key)
        analytics = Analytics(db, settings)
        # Two lanes (docs/event-stream.md): the live relay feeds only the live hubs, so seat maps never
        # wait for a consumer; the stream lane feeds the durable consumers (each keeps its own position,
        # see outbox/consumers.py), in process or through Kafka, here or in `admitone worker` processes.
        relay = OutboxRelay(db, bus)
        stream: StreamLane | None = None
        if not settings.stream_worker:
            consumers = [
                *extra_consumers,
                *builtin_consumers(db, clock, webhook_sender, mail_sender, analytics),
            ]
            stream = StreamLane(db, settings, consumers)
            db.commit_listeners.append(stream.relay.notify)
        db.commit_listeners.append(relay.notify)
        db.outbox_listeners.append(hub.committed)
        app.state.admitone = AppState(
            settings=settings,
            db=db,
            clock=clock,
            engine=engine,
            payments=Payments(test_provider),
            sweeper=sweeper,
            secret_key=secret_key,
            bus=bus,
            relay=relay,
            hub=hub,
            fanout=fanout,
            consumers=stream.runners if stream is not None else [],
            stream_relay=stream.relay if stream is not None else None,
            kafka_loops=stream.kafka_loops if stream is not None else [],
            ticket_key=ticket_signing_key(secret_key),
            webhooks=webhook_sender,
            mail=mail_sender,
            analytics=analytics,
        )
        sweeper.start()
        relay.start()
        if stream is not None:
            await stream.start()
        hub.start()
        webhook_sender.start()
        mail_sender.start()
        analytics.start()
        try:
            yield
        finally:
            await analytics.stop()
            await mail_sender.stop()
            await webhook_sender.stop()
            await webhook_client.aclose()
            await hub.stop()
            await relay.stop()
            if stream is not None:
                await stream.stop()
            await sweeper.stop()
            await engine.close()
            if fanout is not None:
                await fanout.close()
            await test_provider.close()
            await client.aclose()
            await db.dispose()

    app = AdmitoneApp(
        max_body_bytes=settings.max_body_bytes,
        title="admitone",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    install_error_handlers(app)
    describe_parameters(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)

    api = APIRouter(prefix="/api/v1")
    # Routes are matched in order; the hot path (holds, availability) comes first.
    api.include_router(inventory_api.router)
    api.include_router(events_api.public)
    api.include_router(orders_api.router)
    api.include_router(orders_api.payments_router)
    api.include_router(live_api.router)
    api.include_router(chat_api.public)
    # Organizer routes: authentication is attached here, so no organizer route can forget it.
    guarded = [Depends(current_caller)]
    api.include_router(organizers_api.router, dependencies=guarded)
    api.include_router(events_api.organizer, dependencies=guarded)
    api.include_router(orders_api.organizer, dependencies=guarded)
    api.include_router(chat_api.organizer, dependencies=guarded)
    api.include_router(webhooks_api.router, dependencies=guarded)
    api.include_router(mail_api.organizer, dependencies=guarded)
    api.include_router(checkin_api.router, dependencies=guarded)
    api.include_router(analytics_api.organizer, dependencies=guarded)
    # The dashboard socket authenticates with its first message (browsers cannot set headers on it).
    api.include_router(analytics_api.sockets)
    app.include_router(api)

    @app.get("/health/live", name="liveness", tags=["Health"], response_model=Health)
    async def liveness() -> Health:
        """The process is up."""
        return Health(status="ok", version=__version__)

    @app.get(
        "/health/ready", name="readiness", tags=["Health"], response_model=Health, responses=problems(503)
    )
    async def readiness(state: StateDep) -> Health:
        """The process can reach its database."""
        try:
            await state.db.ping()
        except Exception as exc:
            raise Unavailable(f"The database is not reachable: {type(exc).__name__}.") from exc
        if state.fanout is not None:
            try:
                await state.fanout.ping()
            except Exception as exc:
                raise Unavailable(f"Redis is not reachable: {type(exc).__name__}.") from exc
        return Health(status="ready", version=__version__)

    # The buyer web app: pages at /, /events/{id} and /orders/{id}; ticket QR codes; static files.
    app.include_router(web_api.router)
    app.include_router(analytics_api.page)
    app.add_api_route("/asyncapi.json", asyncapi_document, include_in_schema=False)  # the Kafka topic
    app.mount("/static", web_api.static_files(), name="static")

    return app


def create_server_app() -> FastAPI:
    """The factory ``admitone serve`` runs in every worker process, with the garbage collector tuned
    (``core/runtime.py``)."""
    app = create_app()
    tune_garbage_collector()
    return app
