"""Live fan-out: N WebSocket subscribers of one event while seats are held at a fixed rate.

    .venv/bin/python bench/fanout.py [--clients 1000,5000,10000] [--hold-rate 1000] [--duration 20]
                                     [--client-procs 4] [--compression deflate,none] [--quiet-wait 300]
                                     [--kafka] [--stream-worker] [--profile] [--keep] [--gc-freeze]
                                     [--out ...] [--plot ...]
    .venv/bin/python bench/fanout.py --summarize-profile py-spy-none-10000.txt

One run, on PostgreSQL (a fresh database, dropped first if it exists and again at the end):

1. ``admitone migrate`` and ``admitone organizer create``; through the organizer API one venue with
   enough seats for every hold of a run (one row per 50 seats, category A);
2. for every compression setting and every N: starts a fresh ``admitone serve`` (one process, uvicorn +
   uvloop + httptools, in-process live bus: no Redis), creates an event on sale on that venue with a
   seated ticket type, connects one probe subscriber (this loads the event's live view) and makes 20
   warm-up holds, then reads the server's VmRSS (``before``);
3. connects N WebSocket clients from ``--client-procs`` processes (bench/fanout_client.py, batches of
   ``--batch`` per process), each reading every message; reads VmRSS again (``connected``);
4. holds one seat per request at ``--hold-rate`` for ``--duration`` seconds from a separate process
   (bench/fanout_load.py, open loop over ``--connections`` keep-alive connections), so every hold
   changes the seat map; records each hold's send time and the arrival of its 201;
5. after a 3 s drain stops the clients and the server, and computes for every (client, successful hold)
   pair: ``receipt - 201 arrival`` (the commit happens before the response is written, so this slightly
   underestimates commit-to-receipt) and ``receipt - request sent`` (an upper bound);
6. prints a table, writes ``--out`` (JSON) and draws ``--plot``.

Compression ``deflate``: the clients offer permessage-deflate, as browsers do, and the server is started
with ``ADMITONE_WS_PER_MESSAGE_DEFLATE=true`` so that it accepts it; ``none``: the server does not offer
it (its default) and the clients do not ask for it. Everything talks to 127.0.0.1 only; every phase
is bounded in time; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import orjson
from websockets.asyncio.client import connect

from lanes import LanePoller

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

GOAL_CLIENTS = 10_000
GOAL_HOLDS_PER_S = 1000.0
GOAL_P99_MS = 500.0
GOAL_KIB_PER_CONN = 20.0

WARMUP_HOLDS = 20
DRAIN_SECONDS = 3.0
SEATS_PER_ROW = 50

# Latency histogram: 0.1 ms bins from -2 s to +120 s.
HIST_LO, HIST_RES, HIST_HI = -2.0, 1e-4, 120.0
HIST_BINS = int((HIST_HI - HIST_LO) / HIST_RES) + 1


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# processes


@dataclass
class Started:
    """Every process this run started, so that the cleanup can stop each one by its PID."""

    procs: list[tuple[str, subprocess.Popen[bytes] | asyncio.subprocess.Process]] = field(
        default_factory=list
    )

    def add(self, name: str, proc: Any) -> None:
        self.procs.append((name, proc))

    def stop_all(self) -> None:
        for name, proc in reversed(self.procs):
            running = (
                proc.returncode is None
                if isinstance(proc, asyncio.subprocess.Process)
                else (proc.poll() is None)
            )
            if running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                print(f"  killed leftover {name} (pid {proc.pid})", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_nofile() -> tuple[int, int]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (1_048_576, 262_144, 65_536):
        if want <= hard:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want, want
        except (ValueError, OSError):
            continue
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def status_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "Threads"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_pids(db: str) -> list[int]:
    """The PostgreSQL backends serving this run's database (the cluster is shared with other work)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
                title = raw.replace(b"\0", b" ").decode(errors="replace")
                if title.startswith("postgres:") and f" {db} " in title:
                    pids.append(int(entry))
    return pids


def cpu_sample(
    server: int, clients: list[Any], load: int, db: str, worker: int | None = None
) -> dict[str, dict[int, float]]:
    """CPU seconds so far, per process, of the server, the client processes, the load process, the
    PostgreSQL backends of this run's database and, with --stream-worker, the stream worker."""
    return {
        "server": {server: cpu_seconds(server)},
        **({"worker": {worker: cpu_seconds(worker)}} if worker is not None else {}),
        "client_procs": {p.pid: cpu_seconds(p.pid) for p in clients},
        "load_proc": {load: cpu_seconds(load)},
        "postgres": {pid: cpu_seconds(pid) for pid in postgres_pids(db)},
    }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """Seconds used between two samples, over the processes present in both (sampled while all run)."""
    return {k: sum(after[k][pid] - before[k][pid] for pid in after[k] if pid in before[k]) for k in before}


def machine_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


async def busy_cores(seconds: float) -> float:
    j0 = machine_jiffies()
    await asyncio.sleep(seconds)
    j1 = machine_jiffies()
    return (j1[0] - j0[0]) / max(j1[1] - j0[1], 1) * (os.cpu_count() or 1)


async def wait_quiet(below: float, at_most: float) -> tuple[float, float]:
    """Waits (at most ``at_most`` seconds) until the machine, before this run starts anything, is busy
    with less than ``below`` cores over 5 s. Returns (seconds waited, busy cores last seen)."""
    t0 = time.monotonic()
    while True:
        busy = await busy_cores(5.0)
        waited = time.monotonic() - t0
        if busy < below or waited >= at_most:
            return waited, busy
        await asyncio.sleep(10)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_cli(args: list[str], env: dict[str, str]) -> str:
    argv = [str(VENV_BIN / "admitone"), *args]
    out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


async def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"server exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://{HOST}:{port}/health/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"server not ready after {within:.0f}s:\n{tail(log)}")


# Experiments only (not the product's defaults): the server started through this bootstrap, which can set
# the cyclic garbage collector's thresholds and move everything alive to its permanent generation
# (gc.freeze) on SIGUSR2, sent once every client is connected. Shows what GC tuning in the server would give.
GC_BOOTSTRAP = """
import gc, os, signal, sys
if os.environ.get("FANOUT_GC_THRESHOLD"):
    gc.set_threshold(*(int(x) for x in os.environ["FANOUT_GC_THRESHOLD"].split(",")))
signal.signal(signal.SIGUSR2, lambda *_: gc.freeze())
sys.argv = ["admitone", *sys.argv[1:]]
from admitone.cli import main
main()
"""


def server_command(args: argparse.Namespace) -> list[str]:
    if args.gc_freeze or args.gc_threshold:
        return [sys.executable, "-c", GC_BOOTSTRAP]
    return [str(VENV_BIN / "admitone")]


def stop_server(proc: subprocess.Popen[bytes]) -> float:
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return time.monotonic() - t0


# --------------------------------------------------------------------------------------------------
# setup through the API


def venue_body(seat_count: int) -> dict[str, Any]:
    rows = []
    for r in range((seat_count + SEATS_PER_ROW - 1) // SEATS_PER_ROW):
        n = min(SEATS_PER_ROW, seat_count - r * SEATS_PER_ROW)
        rows.append(
            {
                "label": str(r + 1),
                "seats": [{"number": i + 1, "x": i, "y": r, "category": "A"} for i in range(n)],
            }
        )
    return {"name": f"Fan-out arena ({seat_count} seats)", "sections": [{"name": "Floor", "rows": rows}]}


async def create_venue(client: httpx.AsyncClient, seat_count: int) -> tuple[int, list[int]]:
    r = await client.post("/api/v1/organizer/venues", json=venue_body(seat_count), timeout=300)
    if r.status_code != 201:
        raise BenchError(f"creating the venue: HTTP {r.status_code} {r.text[:500]}")
    venue_id = int(r.json()["id"])
    r = await client.get(f"/api/v1/organizer/venues/{venue_id}/seats", timeout=120)
    r.raise_for_status()
    return venue_id, [int(s["id"]) for s in r.json()]


async def create_event(client: httpx.AsyncClient, venue_id: int, label: str) -> int:
    now = dt.datetime.now(dt.UTC)
    r = await client.post(
        "/api/v1/organizer/events",
        json={
            "name": f"Fan-out bench {label}",
            "slug": f"fanout-{label}-{secrets.token_hex(3)}",
            "venue_id": venue_id,
            "starts_at": (now + dt.timedelta(days=30)).isoformat(),
            "sales_open_at": (now - dt.timedelta(minutes=1)).isoformat(),
            "status": "on_sale",
        },
    )
    if r.status_code != 201:
        raise BenchError(f"creating the event: HTTP {r.status_code} {r.text[:500]}")
    event_id = int(r.json()["id"])
    r = await client.post(
        f"/api/v1/organizer/events/{event_id}/ticket-types",
        json={"name": "Seat", "kind": "seated", "category": "A", "price_minor": 5000, "max_per_order": 100},
    )
    if r.status_code != 201:
        raise BenchError(f"creating the ticket type: HTTP {r.status_code} {r.text[:500]}")
    return event_id


class Probe:
    """One subscriber in this process: loads the event's live view before the baseline is read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages = 0
        self.task: asyncio.Task[None] | None = None
        self.first = asyncio.Event()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.first.wait(), 30)

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            async with connect(self.url, compression=None, ping_interval=None, proxy=None) as ws:
                async for _ in ws:
                    self.messages += 1
                    self.first.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


# --------------------------------------------------------------------------------------------------
# one N


async def read_line(proc: asyncio.subprocess.Process, within: float) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), within)
    return line.decode().strip()


async def run_one(
    args: argparse.Namespace,
    n: int,
    compression: str,
    env: dict[str, str],
    api_key: str,
    work: Path,
    started: Started,
    venue: list[Any],
) -> dict[str, Any]:
    label = f"{compression}-{n}"
    waited, idle_busy = await wait_quiet(args.quiet_below, args.quiet_wait)
    print(
        f"\n   machine busy before the run: {idle_busy:.2f} cores "
        f"(waited {waited:.0f}s for < {args.quiet_below})",
        flush=True,
    )
    port = free_port()
    log = work / f"server-{label}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [*server_command(args), "serve", "--host", HOST, "--port", str(port), "--no-migrate"],
            # The server offers permessage-deflate only when configured to (off by default since it
            # doubles the memory per connection); "deflate" measures it switched on. With Kafka, each
            # server gets a topic and consumer groups of its own.
            env={
                **env,
                "ADMITONE_WS_PER_MESSAGE_DEFLATE": "true" if compression == "deflate" else "false",
                "ADMITONE_KAFKA_TOPIC": f"admitone.fanout.{label}",
                "ADMITONE_KAFKA_GROUP_PREFIX": f"fanout-{label}",
            },
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started.add(f"server {label}", server)
    print(f"\n== N={n}, compression={compression}: server pid {server.pid} on {HOST}:{port}", flush=True)
    worker: subprocess.Popen[bytes] | None = None
    if args.stream_worker:
        # The event stream (durable consumers) in a process of its own; the server keeps the live lane.
        with (work / f"worker-{label}.log").open("wb") as out:
            worker = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [str(VENV_BIN / "admitone"), "worker"],
                env={
                    **env,
                    "ADMITONE_KAFKA_TOPIC": f"admitone.fanout.{label}",
                    "ADMITONE_KAFKA_GROUP_PREFIX": f"fanout-{label}",
                },
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.add(f"worker {label}", worker)
        print(f"  stream worker pid {worker.pid}", flush=True)
    result: dict[str, Any] = {
        "clients": n,
        "compression": compression,
        "client": args.client,
        "server_pid": server.pid,
        "machine_busy_before_cores": round(idle_busy, 2),
        "waited_for_quiet_s": round(waited),
    }
    probe: Probe | None = None
    clients: list[asyncio.subprocess.Process] = []
    try:
        await wait_ready(server, port, log)
        base = f"http://{HOST}:{port}"
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, trust_env=False) as http:
            if not venue:
                t0 = time.monotonic()
                venue.extend(await create_venue(http, args.seats))
                print(f"  venue {venue[0]}: {len(venue[1])} seats ({time.monotonic() - t0:.1f}s)", flush=True)
            venue_id, seat_ids = venue
            event_id = await create_event(http, venue_id, label)
            ws_url = f"ws://{HOST}:{port}/api/v1/events/{event_id}/live"
            probe = Probe(ws_url)
            await probe.start()
            for seat in seat_ids[-WARMUP_HOLDS:]:
                r = await http.post(f"/api/v1/events/{event_id}/holds", json={"seat_ids": [seat]})
                if r.status_code != 201:
                    raise BenchError(f"warm-up hold: HTTP {r.status_code} {r.text[:300]}")
        await asyncio.sleep(1.5)
        before = status_kib(server.pid)
        result["event_id"] = event_id
        result["rss_before_kib"] = before["VmRSS"]
        print(
            f"  event {event_id}; server VmRSS before connecting: {before['VmRSS'] / 1024:.1f} MiB",
            flush=True,
        )

        # -- connect N clients ------------------------------------------------------------------------
        per = [
            n // args.client_procs + (1 if i < n % args.client_procs else 0) for i in range(args.client_procs)
        ]
        max_seconds = args.connect_timeout + args.duration + 120
        t_connect = time.monotonic()
        base_index = 0
        for i, count in enumerate(per):
            if count == 0:
                continue
            argv = [
                sys.executable,
                str(BENCH_DIR / "fanout_client.py"),
                "--url",
                ws_url,
                "--count",
                str(count),
                "--base-index",
                str(base_index),
                "--batch",
                str(args.batch),
                "--compression",
                compression,
                "--client",
                args.client,
                "--out",
                str(work / f"client-{label}-{i}.npz"),
                "--max-seconds",
                str(max_seconds),
            ]
            base_index += count
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=(work / f"client-{label}-{i}.log").open("wb"),
            )
            started.add(f"client {label}/{i}", proc)
            clients.append(proc)
        connected = failed = 0
        for proc in clients:
            line = await read_line(proc, args.connect_timeout)
            parts = line.split()
            if not parts or parts[0] != "ready":
                raise BenchError(f"client process {proc.pid} said {line!r}")
            connected += int(parts[1])
            failed += int(parts[2])
        connect_s = time.monotonic() - t_connect
        print(f"  connected {connected}/{n} in {connect_s:.1f}s ({failed} failed)", flush=True)
        if args.gc_freeze:
            os.kill(server.pid, signal.SIGUSR2)  # the bootstrap's handler calls gc.freeze()
        await asyncio.sleep(3)
        with_n = status_kib(server.pid)
        result.update(
            connected=connected,
            connect_failed=failed,
            connect_seconds=round(connect_s, 2),
            rss_connected_kib=with_n["VmRSS"],
            kib_per_connection=round((with_n["VmRSS"] - before["VmRSS"]) / max(connected, 1), 2),
        )
        print(
            f"  server VmRSS with {connected} connected: {with_n['VmRSS'] / 1024:.1f} MiB "
            f"-> {result['kib_per_connection']:.1f} KiB per connection",
            flush=True,
        )

        # -- load ------------------------------------------------------------------------------------
        needed = int(args.hold_rate * args.duration)
        seats_file = work / f"seats-{label}.json"
        seats_file.write_bytes(orjson.dumps(seat_ids[:needed]))
        holds_out = work / f"holds-{label}.npz"
        start_at = time.time() + 1.0
        lanes = LanePoller(f"postgresql://{args.pg_user}@{HOST}:{args.pg_port}/{args.db}", event_id)
        lane_watching = asyncio.create_task(lanes.run())
        load = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BENCH_DIR / "fanout_load.py"),
            "--port",
            str(port),
            "--event",
            str(event_id),
            "--seats",
            str(seats_file),
            "--rate",
            str(args.hold_rate),
            "--duration",
            str(args.duration),
            "--connections",
            str(args.connections),
            "--start-at",
            repr(start_at),
            "--out",
            str(holds_out),
            cwd=ROOT,
            stderr=(work / f"load-{label}.log").open("wb"),
        )
        started.add(f"load {label}", load)
        # The CPU window is the load's schedule, [start_at, start_at + duration], sampled while every
        # process still runs (one that has exited takes its CPU seconds with it).
        await asyncio.sleep(max(0.0, start_at - time.time()))
        worker_pid = worker.pid if worker is not None else None
        cpu0 = cpu_sample(server.pid, clients, load.pid, args.db, worker_pid)
        jiffies0 = machine_jiffies()
        t_load0 = time.monotonic()
        profiler = None
        if args.profile:
            prof_out = work / f"py-spy-{label}.txt"
            profiler = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [
                    str(VENV_BIN / "py-spy"),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--native",
                    "--rate",
                    "100",
                    "--duration",
                    str(int(min(10, args.duration))),
                    "--format",
                    "raw",
                    "-o",
                    str(prof_out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(work / f"py-spy-{label}.log").open("wb"),
            )
            started.add(f"py-spy {label}", profiler)
            result["profile"] = str(prof_out)
        await asyncio.sleep(max(0.0, start_at + args.duration - time.time()))
        cpu1 = cpu_sample(server.pid, clients, load.pid, args.db, worker_pid)
        used = cpu_used(cpu0, cpu1)
        jiffies1 = machine_jiffies()
        wall = time.monotonic() - t_load0
        try:
            await asyncio.wait_for(load.wait(), 60)
        except TimeoutError as exc:
            raise BenchError("the load process did not finish in time") from exc
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=30)
        peak = status_kib(server.pid)
        await asyncio.sleep(DRAIN_SECONDS)
        after = status_kib(server.pid)
        lanes.stop()
        await asyncio.wait_for(lane_watching, 30)
        result["live_lane"] = await live_lane_lag(args, event_id, start_at, start_at + args.duration, lanes)
        print(f"  live lane (outbox -> hub) during the load: {result['live_lane']}", flush=True)
        busy = (jiffies1[0] - jiffies0[0]) / max(jiffies1[1] - jiffies0[1], 1) * (os.cpu_count() or 1)
        result.update(
            rss_after_load_kib=after["VmRSS"],
            vmhwm_kib=peak["VmHWM"],
            cpu={
                "window_s": round(wall, 2),
                **{f"{k}_cores": round(v / wall, 2) for k, v in used.items()},
                "machine_busy_cores": round(busy, 2),
                # CPU of everything else on the machine during the load: other tenants, the kernel, ...
                "other_cores": round(max(busy - sum(used.values()) / wall, 0.0), 2),
            },
        )

        # -- stop the clients, collect ----------------------------------------------------------------
        for proc in clients:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(b"stop\n")
                await proc.stdin.drain()
        for proc in clients:
            with contextlib.suppress(TimeoutError):
                await read_line(proc, 120)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                os.kill(proc.pid, signal.SIGKILL)
        result.update(analyse(work, label, len(clients), holds_out, args))
        return result
    finally:
        for proc in clients:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        if probe is not None:
            await probe.stop()
        took = stop_server(server)
        print(f"  stopped server (pid {server.pid}, exit {server.returncode}, {took:.1f}s)", flush=True)
        if worker is not None:
            took = stop_server(worker)
            print(f"  stopped worker (pid {worker.pid}, exit {worker.returncode}, {took:.1f}s)", flush=True)


# --------------------------------------------------------------------------------------------------
# analysis


def percentile(hist: np.ndarray, q: float) -> float | None:
    total = int(hist.sum())
    if total == 0:
        return None
    rank = int(np.ceil(q / 100 * total))
    index = int(np.searchsorted(np.cumsum(hist), max(rank, 1)))
    return round((HIST_LO + (index + 0.5) * HIST_RES) * 1000, 1)


def analyse(work: Path, label: str, procs: int, holds_out: Path, args: argparse.Namespace) -> dict[str, Any]:
    load = np.load(holds_out)
    load_meta = orjson.loads(Path(str(holds_out) + ".json").read_bytes())
    status, send, resp, seat = load["status"], load["send"], load["response"], load["seat"]
    ok = status == 201
    statuses = {str(int(k)): int(v) for k, v in zip(*np.unique(status, return_counts=True), strict=True)}
    start = float(load_meta["start"])
    last = float(resp[ok].max()) if ok.any() else start
    n_ok = int(ok.sum())
    achieved = n_ok / max(last - start, 1e-9)
    hold_ms = (resp[ok] - send[ok]) * 1000
    by_seat = {int(s): i for i, s in enumerate(seat[ok])}
    send_ok, resp_ok, seat_ok = send[ok], resp[ok], seat[ok]

    seqs, times = [], []
    held: dict[int, list[int]] = {}
    totals = {"messages": 0, "snapshots": 0, "bytes": 0, "mismatched": 0, "open_at_stop": 0}
    closes: dict[str, int] = {}
    errors: dict[str, int] = {}
    connected = 0
    for i in range(procs):
        path = work / f"client-{label}-{i}.npz"
        data = np.load(path)
        seqs.append(data["seq"])
        times.append(data["t"])
        summary = orjson.loads(Path(str(path) + ".json").read_bytes())
        connected += summary["connected"]
        for key in totals:
            totals[key] += summary[key]
        for k, v in summary["closes"].items():
            closes[k] = closes.get(k, 0) + v
        for k, v in summary["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in summary["held"].items():
            held.setdefault(int(k), v)
    seq_all = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
    t_all = np.concatenate(times) if times else np.zeros(0)
    order = np.argsort(seq_all, kind="stable")
    seq_all, t_all = seq_all[order], t_all[order]
    uniq, first_at, counts = np.unique(seq_all, return_index=True, return_counts=True)

    hist_commit = np.zeros(HIST_BINS, dtype=np.int64)
    hist_upper = np.zeros(HIST_BINS, dtype=np.int64)
    delivered = 0
    seen_seats: set[int] = set()

    def add(hist: np.ndarray, diffs: np.ndarray) -> None:
        idx = np.clip(((diffs - HIST_LO) / HIST_RES).astype(np.int64), 0, HIST_BINS - 1)
        hist += np.bincount(idx.ravel(), minlength=HIST_BINS)

    for s, a, c in zip(uniq, first_at, counts, strict=True):
        idx = [by_seat[x] for x in held.get(int(s), ()) if x in by_seat and x not in seen_seats]
        if not idx:
            continue
        seen_seats.update(int(seat_ok[i]) for i in idx)  # the first message that shows a seat held
        recv = t_all[a : a + c]
        sel = np.asarray(idx)
        add(hist_commit, recv[:, None] - resp_ok[sel][None, :])
        add(hist_upper, recv[:, None] - send_ok[sel][None, :])
        delivered += len(recv) * len(sel)

    in_window = (t_all >= start) & (t_all <= last)
    window = max(last - start, 1e-9)
    dropped_4008 = closes.get("4008", 0)
    dropped_other = sum(v for k, v in closes.items() if k != "4008")
    expected = n_ok * connected
    return {
        "holds": {
            "offered_per_s": args.hold_rate,
            "requests": int(load_meta["total"]),
            "status_counts": statuses,
            "ok": n_ok,
            "achieved_per_s": round(achieved, 1),
            "response_p50_ms": round(float(np.percentile(hold_ms, 50)), 2) if n_ok else None,
            "response_p99_ms": round(float(np.percentile(hold_ms, 99)), 2) if n_ok else None,
            "worker_failures": load_meta["worker_failures"],
        },
        "delivery": {
            "commit_to_receipt_p50_ms": percentile(hist_commit, 50),
            "commit_to_receipt_p99_ms": percentile(hist_commit, 99),
            "commit_to_receipt_max_ms": percentile(hist_commit, 100),
            "send_to_receipt_p50_ms": percentile(hist_upper, 50),
            "send_to_receipt_p99_ms": percentile(hist_upper, 99),
            "send_to_receipt_max_ms": percentile(hist_upper, 100),
            "pairs_delivered": delivered,
            "pairs_expected": expected,
            "delivered_fraction": round(delivered / expected, 5) if expected else None,
            "seats_seen_held": len(seen_seats),
            "over_2s_pairs": int(hist_commit[int((2.0 - HIST_LO) / HIST_RES) :].sum()),
        },
        "messages": {
            "changes_received": len(t_all),
            "changes_per_s_all_clients": round(float(in_window.sum()) / window, 1),
            "distinct_changes_messages": len(uniq),
            "bytes_received": totals["bytes"],
            "snapshots": totals["snapshots"],
            "mismatched_copies": totals["mismatched"],
        },
        "dropped": {
            "closed_4008": dropped_4008,
            "closed_other": dropped_other,
            "close_codes": closes,
            "errors": errors,
            "open_at_stop": totals["open_at_stop"],
        },
    }


# --------------------------------------------------------------------------------------------------
# output


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| compression | clients connected | holds/s achieved | commit→receipt p50 / p99 ms | "
        "send→receipt p50 / p99 ms | messages/s (all clients) | dropped (4008 / other) | "
        "server RSS before → with N (MiB) | KiB per connection | server CPU (cores) | other work on the "
        "machine (cores) |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        d = r.get("delivery", {})
        dropped = r.get("dropped", {})
        lines.append(
            f"| {r['compression']} | {r.get('connected', 0):,} / {r['clients']:,} | "
            f"{r.get('holds', {}).get('achieved_per_s', 0):,.0f} | "
            f"{d.get('commit_to_receipt_p50_ms')} / {d.get('commit_to_receipt_p99_ms')} | "
            f"{d.get('send_to_receipt_p50_ms')} / {d.get('send_to_receipt_p99_ms')} | "
            f"{r.get('messages', {}).get('changes_per_s_all_clients', 0):,.0f} | "
            f"{dropped.get('closed_4008', '-')} / {dropped.get('closed_other', '-')} | "
            f"{r.get('rss_before_kib', 0) / 1024:.1f} → {r.get('rss_connected_kib', 0) / 1024:.1f} | "
            f"{r.get('kib_per_connection', 0):.1f} | {r.get('cpu', {}).get('server_cores')}"
            + (f" + worker {r['cpu']['worker_cores']}" if "worker_cores" in r.get("cpu", {}) else "")
            + " | "
            f"{r.get('cpu', {}).get('other_cores')} |"
        )
    return "\n".join(lines)


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for comp in sorted({r["compression"] for r in rows}):
        big = [
            r for r in rows if r["compression"] == comp and r["clients"] >= GOAL_CLIENTS and "delivery" in r
        ]
        if not big:
            out[comp] = {"measured": False}
            continue
        r = max(big, key=lambda r: r["clients"])
        p99 = r["delivery"]["commit_to_receipt_p99_ms"]
        out[comp] = {
            "clients": r["clients"],
            "all_connected_and_kept": r["connected"] == r["clients"]
            and r["dropped"]["closed_4008"] + r["dropped"]["closed_other"] == 0,
            "holds_per_s_met": r["holds"]["achieved_per_s"] >= GOAL_HOLDS_PER_S * 0.98,
            "p99_met": p99 is not None and p99 < GOAL_P99_MS,
            "memory_met": r["kib_per_connection"] < GOAL_KIB_PER_CONN,
        }
    return out


def plot(rows: list[dict[str, Any]], out: Path, machine: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_mem) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    for i, comp in enumerate(sorted({r["compression"] for r in rows})):
        runs = sorted(
            (r for r in rows if r["compression"] == comp and "delivery" in r), key=lambda r: r["clients"]
        )
        if not runs:
            continue
        n = [r["clients"] for r in runs]
        color = f"C{i}"
        d = [r["delivery"] for r in runs]
        ax_lat.plot(n, [x["commit_to_receipt_p50_ms"] for x in d], "o-", color=color, label=f"p50, {comp}")
        ax_lat.plot(
            n, [x["commit_to_receipt_p99_ms"] for x in d], "s-", color=color, lw=2, label=f"p99, {comp}"
        )
        ax_lat.plot(
            n,
            [x["send_to_receipt_p99_ms"] for x in d],
            "s:",
            color=color,
            alpha=0.6,
            label=f"p99 upper bound (request sent), {comp}",
        )
        ax_mem.plot(n, [r["kib_per_connection"] for r in runs], "o-", color=color, label=f"{comp}")
        for x, y in zip(n, [r["kib_per_connection"] for r in runs], strict=True):
            ax_mem.annotate(
                f"{y:.1f}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
                color=color,
            )
    ax_lat.axhline(GOAL_P99_MS, color="tab:red", ls="--", lw=1, label=f"goal: p99 < {GOAL_P99_MS:.0f} ms")
    ax_lat.set_yscale("log")
    ax_lat.set_xlabel("connected WebSocket clients (N)")
    ax_lat.set_ylabel("hold 201 → seat shown held at a client (ms, log)")
    ax_lat.set_title("Delivery latency, every (client, hold) pair")
    ax_lat.grid(True, which="both", alpha=0.3)
    ax_lat.legend(fontsize=8)
    ax_mem.axhline(
        GOAL_KIB_PER_CONN, color="tab:red", ls="--", lw=1, label=f"goal: < {GOAL_KIB_PER_CONN:.0f} KiB"
    )
    ax_mem.set_xlabel("connected WebSocket clients (N)")
    ax_mem.set_ylabel("server RSS growth / N (KiB)")
    ax_mem.set_ylim(bottom=0)
    ax_mem.set_title("Server memory per connection")
    ax_mem.grid(True, alpha=0.3)
    ax_mem.legend(fontsize=8, title="permessage-deflate")
    fig.suptitle(f"admitone live fan-out — one server process, {machine}", fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


# --------------------------------------------------------------------------------------------------


async def live_lane_lag(
    args: argparse.Namespace, event_id: int, t0: float, t1: float, lanes: LanePoller
) -> dict[str, Any]:
    """How long the event's domain events of the load window waited in the outbox before the live relay
    read them and handed them to the hub: the lane's sampled position time (``bench/lanes.py``; the relay
    records it when it has read the batch, before it publishes it; an upper bound by one sample) minus
    ``occurred_at`` (both the server's clock). This is the part of commit -> receipt spent before the hub;
    rows the lane had not reached when sampling stopped are counted as unpublished."""
    conn = await asyncpg.connect(f"postgresql://{args.pg_user}@{HOST}:{args.pg_port}/{args.db}")
    try:
        rows = await conn.fetch(
            """
            SELECT sequence, occurred_at FROM outbox
            WHERE aggregate_type = 'event' AND aggregate_id = $1
              AND occurred_at BETWEEN to_timestamp($2) AND to_timestamp($3)
            """,
            event_id,
            t0,
            t1,
        )
    finally:
        await conn.close()
    lags = []
    unpublished = 0
    for r in rows:
        at = lanes.picked_up("live", r["sequence"])
        if at is None:
            unpublished += 1
        else:
            lags.append((at - r["occurred_at"]).total_seconds())
    p50, p99 = np.percentile(lags, [50, 99]).tolist() if lags else [None, None]
    return {
        "rows": len(rows),
        "unpublished_after_drain": unpublished,
        "outbox_to_hub_p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "outbox_to_hub_p99_ms": None if p99 is None else round(p99 * 1000, 1),
    }


async def create_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def code_version() -> dict[str, Any]:
    """The commit measured and whether src/ had uncommitted changes (read-only git commands)."""
    out: dict[str, Any] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        out["src_local_changes"] = bool(status.strip())
    return out


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "websockets": importlib.metadata.version("websockets"),
    }


async def amain(args: argparse.Namespace) -> int:
    nofile = raise_nofile()
    need = max(args.clients) + 1000
    if nofile[0] < need:
        print(f"warning: open-file limit {nofile[0]} < {need}", flush=True)
    machine = machine_info()
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, open-file limit {nofile[0]}", flush=True)
    started = Started()
    work = Path(tempfile.mkdtemp(prefix="admitone-fanout-"))
    db_url = f"postgresql+asyncpg://{args.pg_user}@{HOST}:{args.pg_port}/{args.db}"
    admin_dsn = f"postgresql://{args.pg_user}@{HOST}:{args.pg_port}/postgres"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADMITONE_")}
    if args.gc_threshold:
        env["FANOUT_GC_THRESHOLD"] = args.gc_threshold
    if args.stream_worker:
        env["ADMITONE_STREAM_WORKER"] = "true"
    env.update(
        ADMITONE_DATABASE_URL=db_url,
        ADMITONE_DATA_DIR=str(work),
        ADMITONE_SECRET_KEY=secrets.token_urlsafe(48),
        ADMITONE_LOG_LEVEL="warning",
        ADMITONE_MAX_BODY_BYTES=str(32 * 1024 * 1024),
    )
    rows: list[dict[str, Any]] = []
    code_at_start = code_version()
    broker = None
    try:
        if args.kafka:
            # The Kafka bus: the live relay feeds only the live hub, the durable consumers read the topic
            # in their own loops (docs/event-stream.md). Without it they run inside the live relay's loop.
            from relay import start_broker, wait_broker

            broker = start_broker(work)
            started.add("tansu", broker.proc)
            await wait_broker(broker)
            env["ADMITONE_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
        await create_database(admin_dsn, args.db)
        run_cli(["migrate"], env)
        out = run_cli(["organizer", "create", "Fan-out bench"], env)
        api_key = next(line.split()[-1] for line in out.splitlines() if line.startswith("api key"))
        venue: list[Any] = []
        for comp in args.compression:
            for n in args.clients:
                try:
                    rows.append(await run_one(args, n, comp, env, api_key, work, started, venue))
                except (BenchError, OSError, TimeoutError, httpx.HTTPError) as exc:
                    print(f"  run N={n} {comp} failed: {exc}", flush=True)
                    rows.append({"clients": n, "compression": comp, "error": str(exc)[:2000]})
    finally:
        started.stop_all()
        with contextlib.suppress(Exception):
            await drop_database(admin_dsn, args.db)

    report = {
        "benchmark": "live fan-out",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([".venv/bin/python", "bench/fanout.py", *sys.argv[1:]]),
        "code": {"at_start": code_at_start, "at_end": code_version()},
        "machine": {**machine, "open_file_limit": nofile[0]},
        "config": {
            "database": "PostgreSQL (fresh database), one admitone serve process, in-process live bus",
            "kafka": bool(args.kafka),
            "stream_worker": bool(args.stream_worker),
            "hold_rate": args.hold_rate,
            "duration_s": args.duration,
            "client_procs": args.client_procs,
            "connect_batch": args.batch,
            "load_connections": args.connections,
            "coalesce_ms": 200,
            "seats": args.seats,
            "experiment_gc_freeze_after_connect": args.gc_freeze,
            "experiment_gc_threshold": args.gc_threshold,
        },
        "goals": {
            "clients": GOAL_CLIENTS,
            "holds_per_s": GOAL_HOLDS_PER_S,
            "p99_ms": GOAL_P99_MS,
            "kib_per_connection": GOAL_KIB_PER_CONN,
        },
        "goals_met": goals([r for r in rows if "error" not in r]),
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    ok_rows = [r for r in rows if "error" not in r]
    print("\n" + table(ok_rows))
    for r in rows:
        if "error" in r:
            print(f"failed: N={r['clients']} {r['compression']}: {r['error'][:300]}")
    print(f"\ngoals: {json.dumps(report['goals_met'])}")
    if ok_rows:
        plot(ok_rows, args.plot, f"{machine['nproc']} x {machine['cpu_model']}")
        print(f"wrote {args.out} and {args.plot}")
    if not args.keep:
        for path in work.iterdir():  # noqa: ASYNC240 - the run is over
            if path.suffix in (".npz", ".json") and "py-spy" not in path.name:
                path.unlink()
    print(f"logs in {work}")
    return 0 if ok_rows and len(ok_rows) == len(rows) else 1


PROFILE_PARTS = (
    ("Python's cyclic garbage collector", lambda j: "gc_collect_main" in j),
    (
        "live sends: hub flush, writing to every socket",
        lambda j: "_flusher" in j or "SocketSubscriber" in j or "WebSocketsSansIOProtocol.run_asgi" in j,
    ),
    (
        "durable consumers (webhooks, e-mail, analytics; without Kafka inside the live relay's loop)",
        lambda j: "ConsumerRunner" in j,
    ),
    ("outbox relay: reading and marking batches, live hub delivery", lambda j: "OutboxRelay" in j),
    ("HTTP hold requests", lambda j: "RequestResponseCycle.run_asgi" in j or "HoldFastPath" in j),
    ("hold batch writer", lambda j: "InventoryEngine" in j or "_EventWriter" in j),
    ("database driver, elsewhere", lambda j: "asyncpg" in j or "sqlalchemy" in j),
    ("WebSocket keep-alive pings", lambda j: "send_keepalive_ping" in j or "handle_pong" in j),
    ("WebSocket connections: reads, other", lambda j: "WebSocketsSansIOProtocol" in j),
)


def summarize_profile(path: Path) -> None:
    """Shares of py-spy raw samples (``--format raw``) by part of the server (first matching part wins,
    the garbage collector first), each with the share of ``write()`` system calls within it."""
    shares: dict[str, int] = {}
    writes: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        n = int(count)
        total += n
        part = next((name for name, match in PROFILE_PARTS if match(stack)), "other (event loop, idle)")
        shares[part] = shares.get(part, 0) + n
        if leaf.startswith(("write (libc", "writev (libc", "write (")):
            writes[part] = writes.get(part, 0) + n
    print(f"{total} samples")
    for name, n in sorted(shares.items(), key=lambda kv: -kv[1]):
        w = writes.get(name, 0)
        print(
            f"{n / max(total, 1) * 100:5.1f}%  {name}  (write() system calls: {w / max(total, 1) * 100:.1f}%)"
        )


def main() -> None:
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x]

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--clients", type=ints, default=[1000, 5000, 10000])
    parser.add_argument("--hold-rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument(
        "--client",
        choices=("websockets", "raw"),
        default="websockets",
        help="load clients: the websockets library, or a minimal frame reader (compression none only)",
    )
    parser.add_argument("--compression", type=lambda s: s.split(","), default=["deflate", "none"])
    parser.add_argument(
        "--batch", type=int, default=100, help="connections opened at once per client process"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=512,
        help="HTTP connections of the hold load; enough that slow responses do not cap the offered rate "
        "(at most connections / response time holds per second)",
    )
    parser.add_argument("--connect-timeout", type=float, default=300)
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.5,
        help="before each N, wait until other work on the machine uses fewer cores than this",
    )
    parser.add_argument("--quiet-wait", type=float, default=300, help="wait at most this long (s)")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() in the server once every client is connected",
    )
    parser.add_argument(
        "--gc-threshold", default="", help="experiment: the server's gc.set_threshold, e.g. 50000,20,100"
    )
    parser.add_argument(
        "--stream-worker",
        action="store_true",
        help="run the event stream in an `admitone worker` process (ADMITONE_STREAM_WORKER=true)",
    )
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--db", default="admitone_bench_fanout")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy (--native, 100 Hz) the server for the first 10 s of each load phase",
    )
    parser.add_argument("--keep", action="store_true", help="keep the raw per-client files")
    parser.add_argument(
        "--kafka",
        action="store_true",
        help="run the server with the Kafka bus (a tansu broker this script starts on 127.0.0.1)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "fanout.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "fanout.png")
    parser.add_argument(
        "--summarize-profile", type=Path, help="print the shares of a py-spy raw profile; no run"
    )
    args = parser.parse_args()
    if args.summarize_profile:
        summarize_profile(args.summarize_profile)
        return
    if any(c not in ("deflate", "none") for c in args.compression):
        parser.error("--compression: deflate, none or both")
    args.seats = int(args.hold_rate * args.duration) + WARMUP_HOLDS + 500
    try:
        import uvloop

        sys.exit(uvloop.run(amain(args)))
    except ImportError:
        sys.exit(asyncio.run(amain(args)))


if __name__ == "__main__":
    main()
