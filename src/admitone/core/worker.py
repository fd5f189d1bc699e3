"""``admitone worker``: a process that runs the event stream and nothing else.

With ``ADMITONE_STREAM_WORKER=true`` the API servers leave the stream lane (``outbox/lane.py``) to one or
more of these: the relay of the ``stream`` lane and the durable consumers (webhooks, e-mail, analytics), with
the webhook and e-mail senders they wake. Several workers may run: the relay's advisory lock lets one batch
run at a time, and the consumers' positions make every event count once. A worker hears of no commit made
in another process, so it looks for new events every ``ADMITONE_STREAM_POLL_MS`` while idle and drains
without waiting while they keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from admitone.analytics.runtime import Analytics
from admitone.core.clock import Clock, SystemClock
from admitone.core.db import Database
from admitone.core.runtime import tune_garbage_collector
from admitone.core.settings import Settings
from admitone.mail.consumer import MailConsumer
from admitone.mail.sender import MailSender
from admitone.outbox.consumers import StreamConsumer
from admitone.outbox.lane import StreamLane
from admitone.webhooks.sender import WebhookConsumer, WebhookSender, build_client

log = logging.getLogger(__name__)


def builtin_consumers(
    db: Database, clock: Clock, webhooks: WebhookSender, mail: MailSender, analytics: Analytics
) -> list[StreamConsumer]:
    """The durable consumers every stream lane runs, in process or in a worker."""
    return [WebhookConsumer(db, webhooks.notify), MailConsumer(db, clock, mail), analytics.consumer]


class Worker:
    """The resources of one worker process; ``start`` and ``stop`` them around its life."""

    def __init__(self, settings: Settings, *, extra_consumers: Sequence[StreamConsumer] = ()) -> None:
        clock = SystemClock()
        self.db = Database(settings)
        self.webhook_client = build_client(settings)
        self.webhooks = WebhookSender(self.db, settings, self.webhook_client)
        self.mail = MailSender(self.db, settings, clock, settings.resolved_secret_key())
        self.analytics = Analytics(self.db, settings)
        consumers = [
            *extra_consumers,
            *builtin_consumers(self.db, clock, self.webhooks, self.mail, self.analytics),
        ]
        self.lane = StreamLane(self.db, settings, consumers, idle_seconds=settings.stream_poll_ms / 1000)

    async def start(self) -> None:
        await self.lane.start()
        self.webhooks.start()
        self.mail.start()
        self.analytics.start()

    async def stop(self) -> None:
        await self.lane.stop()
        await self.analytics.stop()
        await self.mail.stop()
        await self.webhooks.stop()
        await self.webhook_client.aclose()
        await self.db.dispose()


async def run_worker(settings: Settings) -> None:
    """Runs a worker until SIGINT or SIGTERM; the batch in flight finishes first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(settings)
    await worker.start()
    tune_garbage_collector()
    log.info("stream worker started (%s)", "Kafka" if settings.kafka_bootstrap_servers else "in-process bus")
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        await worker.stop()
