"""Process-wide settings of the long-running processes (``admitone serve`` workers, ``admitone worker``)."""

from __future__ import annotations

import gc


def tune_garbage_collector() -> None:
    """Moves the objects alive now (modules, routes, schemas, clients) out of the cyclic garbage
    collector's way and makes it run less often.

    Both kinds of process allocate many short-lived objects per request or batch. With the default
    thresholds the collector took about 30% of a hold server's time (measured with py-spy,
    docs/benchmarks.md), and a stream worker ran a full collection every 1-2 s under hold load, each
    taking 50-130 ms of a core the server shares.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
