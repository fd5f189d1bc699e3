"""The ``mail`` consumer of the event stream: a paid order becomes one confirmation job."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from admitone.core.clock import Clock
from admitone.core.db import Database
from admitone.mail import service
from admitone.mail.sender import MailSender
from admitone.outbox.contracts import Envelope, OrderPaid


class MailConsumer:
    """Records jobs in the runner's transaction; the sender, woken after commit, sends them."""

    name = "mail"

    def __init__(self, db: Database, clock: Clock, sender: MailSender) -> None:
        self.db = db
        self.clock = clock
        self.sender = sender

    async def handle(self, conn: AsyncConnection, envelope: Envelope) -> None:
        if envelope.type != OrderPaid.TYPE:
            return
        order_id = str(envelope.payload["order_id"])
        await service.record_confirmation(conn, self.db.dialect, order_id, self.clock.now())

    def after_commit(self, applied: Sequence[Envelope]) -> None:
        if any(e.type == OrderPaid.TYPE for e in applied):
            self.sender.notify()
