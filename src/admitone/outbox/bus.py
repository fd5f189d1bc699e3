"""Where published domain events go: consumers subscribe to the bus of their process."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from admitone.outbox.contracts import Envelope

log = logging.getLogger(__name__)

Consumer = Callable[[Sequence[Envelope]], Awaitable[None]]


class InProcessBus:
    """The embedded bus: every consumer of this process gets every batch, in order."""

    def __init__(self) -> None:
        self._consumers: list[tuple[str, Consumer]] = []

    def subscribe(self, name: str, consumer: Consumer) -> None:
        self._consumers.append((name, consumer))

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        for name, consumer in self._consumers:
            try:
                await consumer(envelopes)
            except Exception:
                # A consumer's failure must not stop the others or the relay; consumers that need every
                # event keep their own position (see the event-stream consumers).
                log.exception("consumer %s failed on a batch of %d events", name, len(envelopes))
