"""Where published domain events go in process: the live hub and, in the embedded default, the durable
consumers of the event stream."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from admitone.outbox.contracts import Envelope

log = logging.getLogger(__name__)

Consumer = Callable[[Sequence[Envelope]], Awaitable[object]]


class ConsumerFailed(Exception):
    """A durable consumer could not apply a batch; the relay keeps the batch and tries again."""


class InProcessBus:
    """The embedded bus: every consumer of this process gets every batch, in order.

    A best-effort consumer (the live hub) that fails is logged and skipped: it resynchronises by itself.
    A durable consumer that fails makes :meth:`publish` raise after the others had their turn, so the relay
    does not mark the batch published and hands it over again; durable consumers skip what they already
    applied (:class:`admitone.outbox.consumers.ConsumerRunner`).
    """

    def __init__(self) -> None:
        self._consumers: list[tuple[str, Consumer, bool]] = []

    def subscribe(self, name: str, consumer: Consumer, *, durable: bool = False) -> None:
        self._consumers.append((name, consumer, durable))

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        failed: list[str] = []
        for name, consumer, durable in self._consumers:
            try:
                await consumer(envelopes)
            except Exception:
                log.exception("consumer %s failed on a batch of %d events", name, len(envelopes))
                if durable:
                    failed.append(name)
        if failed:
            raise ConsumerFailed(f"durable consumers failed: {', '.join(failed)}")
