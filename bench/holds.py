"""Hold throughput on PostgreSQL, against a plain FastAPI baseline, with an oversell check.

    .venv/bin/python bench/holds.py [--connections 64,256] [--duration 20] [--threads 0] [--workers 1]
                                    [--stream-worker]
                                    [--out bench/results/holds.json]
    .venv/bin/python bench/holds.py --summarize-profile bench/results/profile-holds-c256-1.txt

One run:

1. creates a fresh PostgreSQL database (dropped first if it exists), runs ``admitone migrate``, creates an
   organizer with ``admitone organizer create`` and, through the HTTP API, one general-admission event
   per connection count (on sale, one quota far larger than the run can sell, one admission type);
2. starts ``bench/baseline_app.py`` (one JSON POST endpoint, no database) and ``admitone serve``, both
   with uvicorn + uvloop + httptools, access log off, the same worker count;
3. for every connection count: warms up and measures the baseline with wrk, then warms up and measures
   ``POST /api/v1/events/{id}/holds`` with wrk (bench/hold.lua counts the responses per status);
4. stops both servers and checks in the database that nothing was oversold;
5. prints a summary and writes it as JSON to ``--out``; stops every process it started and drops the
   database.

Latency: by default wrk runs one thread per connection and bench/hold.lua times every request itself
(see the note there on wrk's own histogram); wrk's numbers are kept in the JSON next to them.
``--stream-worker`` runs the event stream in an ``admitone worker`` process (its CPU counts as the server's)
and reports after every holds run how far the stream lane was behind and how long it took to catch up.
``--repeat N`` measures every connection count N times and reports the median run; ``--commit SHA``
measures that commit's src/ (exported with ``git archive``) instead of the working tree; ``--profile``
samples the server with py-spy (slows it down; not for the record).

Everything talks to 127.0.0.1 only; every load phase is bounded by ``--duration``/``--warmup``.
Exit status: 0 when the oversell check passes, 1 when it fails, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
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

from lanes import backlogs

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
HOLD_LUA = BENCH_DIR / "hold.lua"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGET_CONNECTIONS = 256
TARGET_HOLDS_PER_S = 3000.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 0.4


class BenchError(Exception):
    """The run could not be made (missing tool, server did not start, ...)."""


# --------------------------------------------------------------------------------------------------
# processes


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int, started: list[Server]
) -> Server:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    # Own session: the server's uvicorn workers share its process group, so the group can be
    # signalled by the server's PID if a worker outlives the master.
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    server = Server(name, proc, port, log_path)
    started.append(server)  # before anything else can fail, so that the cleanup finds it
    print(f"  started {name} (pid {proc.pid}) on {HOST}:{port}: {shlex.join(argv)}", flush=True)
    return server


def stop_server(server: Server) -> dict[str, Any]:
    """SIGTERM, then SIGKILL after 20 s; returns how long the graceful stop took."""
    proc = server.proc
    t0 = time.monotonic()
    killed = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            killed = True
            proc.kill()
            proc.wait(timeout=10)
    # Anything left in the server's own process group (its workers) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    took = round(time.monotonic() - t0, 2)
    with contextlib.suppress(OSError):  # stdout may be a closed pipe by now
        print(
            f"  stopped {server.name} (pid {server.pid}, exit {proc.returncode}, {took}s"
            + (", killed after 20s)" if killed else ")"),
            flush=True,
        )
    return {"server": server.name, "exit": proc.returncode, "seconds": took, "killed": killed}


def wait_ready(server: Server, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.proc.returncode}:\n{tail(server.log_path)}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise BenchError(f"{server.name} not ready after {timeout:.0f}s ({last}):\n{tail(server.log_path)}")


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


# --------------------------------------------------------------------------------------------------
# CPU accounting from /proc: which process group burnt the CPU during a measured phase


def proc_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (comm, ppid, utime+stime ticks) of every visible process."""
    table: dict[int, tuple[str, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def descendants(table: dict[int, tuple[str, int, int]], root: int) -> set[int]:
    out = {root}
    grew = True
    while grew:
        grew = False
        for pid, (_, ppid, _) in table.items():
            if ppid in out and pid not in out:
                out.add(pid)
                grew = True
    return out


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass
class CpuProbe:
    server_pid: int
    worker_pid: int | None = None  # ``admitone worker`` with --stream-worker: counted as server CPU too
    before: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    children_before: float = 0.0
    jiffies_before: tuple[int, int] = (0, 0)

    def start(self) -> None:
        self.before = proc_table()
        self.jiffies_before = cpu_jiffies()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children_before = ru.ru_utime + ru.ru_stime

    def stop(self, wall: float) -> dict[str, float]:
        after = proc_table()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_s = ru.ru_utime + ru.ru_stime - self.children_before  # wrk is the only child reaped meanwhile
        server = descendants(after, self.server_pid)
        worker = descendants(after, self.worker_pid) if self.worker_pid is not None else set()

        def used(pids: set[int]) -> float:
            ticks = 0
            for pid in pids:
                if pid in after:
                    ticks += after[pid][2] - (self.before[pid][2] if pid in self.before else 0)
            return ticks / CLK_TCK

        postgres = {p for p, (comm, _, _) in after.items() if comm.startswith("postgres")}
        busy1, total1 = cpu_jiffies()
        busy0, total0 = self.jiffies_before
        ncpu = os.cpu_count() or 1
        busy_cores = (busy1 - busy0) / max(total1 - total0, 1) * ncpu
        wall = max(wall, 1e-9)
        server_c, postgres_c, wrk_c = used(server) / wall, used(postgres) / wall, wrk_s / wall
        worker_c = used(worker) / wall
        return {
            # The API server and, with --stream-worker, the stream worker: all of admitone's CPU.
            "server_cores": round(server_c + worker_c, 2),
            "worker_cores": round(worker_c, 2),
            "postgres_cores": round(postgres_c, 2),
            "wrk_cores": round(wrk_c, 2),
            "machine_busy_cores": round(busy_cores, 2),
            # CPU the benchmark did not use itself: other tenants of the machine, the kernel, ...
            "other_cores": round(max(busy_cores - server_c - worker_c - postgres_c - wrk_c, 0.0), 2),
        }


# --------------------------------------------------------------------------------------------------
# wrk


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk time '{text}'")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(stdout: str, connections: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = re.search(r"^BENCH_SUMMARY (.*)$", stdout, re.M)
    if not m:
        raise BenchError(f"wrk printed no BENCH_SUMMARY line:\n{stdout}")
    summary = {k: int(v) for k, v in (p.split("=") for p in m.group(1).split())}
    out["duration_s"] = summary["duration_us"] / 1e6
    out["requests"] = summary["requests"]
    # Per-request latencies timed in hold.lua (one connection per wrk thread).
    m = re.search(r"^BENCH_LATENCY (.*)$", stdout, re.M)
    lua = {k: float(v) for k, v in (p.split("=") for p in m.group(1).split())} if m else {"n": 0}
    # wrk's own histogram, kept for comparison.
    wrk_hist: dict[str, float] = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", stdout, re.M)
        if m:
            wrk_hist[f"p{pct}_ms"] = round(to_ms(m.group(1)), 3)
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", stdout, re.M)
    if m:
        wrk_hist["mean_ms"] = round(to_ms(m.group(1)), 3)
        wrk_hist["max_ms"] = round(to_ms(m.group(3)), 3)
    out["wrk_histogram"] = wrk_hist
    if lua["n"] > 0:
        out["latency_source"] = "hold.lua, every request timed"
        out["latency_samples"] = int(lua["n"])
        for key in ("mean", "p50", "p75", "p90", "p99", "p999", "max"):
            out[f"{key}_ms"] = round(lua[f"{key}_us"] / 1000, 3)
    else:
        out["latency_source"] = "wrk histogram (fewer wrk threads than connections)"
        out.update(wrk_hist)
    # Little's law: with C connections each holding one request at a time, the mean latency cannot
    # exceed C x duration / completed requests (it equals it when the server is the bottleneck).
    out["little_bound_mean_ms"] = (
        round(connections * out["duration_s"] * 1000 / out["requests"], 3) if out["requests"] else None
    )
    m = re.search(r"^Requests/sec:\s+([\d.]+)", stdout, re.M)
    out["wrk_requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", stdout)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    out["socket_errors"] = dict(
        zip(
            ("connect", "read", "write", "timeout"),
            (int(x) for x in m.groups()) if m else (0, 0, 0, 0),
            strict=True,
        )
    )
    m = re.search(r"^BENCH_STATUS ?(.*)$", stdout, re.M)
    statuses: dict[str, int] = {}
    if m and m.group(1).strip():
        for part in m.group(1).split():
            code, n = part.split("=")
            statuses[code] = int(n)
    out["status_counts"] = statuses
    return out


def run_wrk(
    url: str, path: str, body: str, connections: int, threads: int, duration: float, *, latency: bool
) -> tuple[dict[str, Any], str, list[str]]:
    # threads 0: one wrk thread per connection, so that hold.lua can time every request.
    threads = connections if threads <= 0 else max(1, min(threads, connections))
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s"]
    if latency:
        argv.append("--latency")
    argv += ["-s", str(HOLD_LUA), url + path]
    env = {
        **os.environ,
        "BENCH_PATH": path,
        "BENCH_BODY": body,
        "BENCH_EXACT": "1" if threads == connections else "0",
    }
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return parse_wrk(out.stdout, connections), out.stdout, argv


def measure(
    kind: str,
    server: Server,
    path: str,
    body: str,
    ok_status: str,
    args: argparse.Namespace,
    connections: int,
    profile_to: Path | None = None,
    worker: Server | None = None,
) -> dict[str, Any]:
    url = f"http://{HOST}:{server.port}"
    warm: dict[str, Any] = {"status_counts": {}}
    if args.warmup > 0:
        warm, _, _ = run_wrk(url, path, body, connections, args.threads, args.warmup, latency=False)
    spy = start_profiler(server, profile_to, args.duration) if profile_to else None
    probe = CpuProbe(server.pid, worker.pid if worker is not None else None)
    probe.start()
    t0 = time.monotonic()
    res, raw, argv = run_wrk(url, path, body, connections, args.threads, args.duration, latency=True)
    cpu = probe.stop(time.monotonic() - t0)
    profile = finish_profiler(spy, profile_to) if spy and profile_to else None
    ok = res["status_counts"].get(ok_status, 0)
    others = {k: v for k, v in res["status_counts"].items() if k != ok_status}
    result = {
        **res,
        "ok_status": int(ok_status),
        "ok": ok,
        "ok_per_s": round(ok / res["duration_s"], 1),
        "other_statuses": others,
        "errors": res["non_2xx"] + sum(res["socket_errors"].values()),
        "warmup_ok": warm["status_counts"].get(ok_status, 0),
        "cpu": cpu,
        # Server CPU per successful response: the efficiency figure least disturbed by other load.
        "server_cpu_ms_per_ok": round(cpu["server_cores"] * 1000 / (ok / res["duration_s"]), 3)
        if ok
        else None,
        "wrk_argv": argv,
    }
    if profile is not None:
        result["profile"] = profile
    print(
        f"  {kind:8s} c={connections:<4d} {result['ok_per_s']:>9.1f} {ok_status}/s   "
        f"p50 {res.get('p50_ms', float('nan')):8.2f} ms   p99 {res.get('p99_ms', float('nan')):8.2f} ms   "
        f"non-2xx {res['non_2xx']}  socket errors {sum(res['socket_errors'].values())}   "
        f"cpu server {cpu['server_cores']}"
        + (f" (worker {cpu['worker_cores']})" if worker is not None else "")
        + f" pg {cpu['postgres_cores']} wrk {cpu['wrk_cores']} other {cpu['other_cores']} cores",
        flush=True,
    )
    if args.verbose:
        print(raw)
    if profile is not None:
        print(f"    profile ({profile['samples']} GIL-holding samples, {profile_to}):")
        print("      inclusive (frames below the uvicorn/asyncio wrappers):")
        for row in [r for r in profile["inclusive"] if r["share"] < 0.9][:20]:
            print(f"        {row['share']:6.1%}  {row['frame']}")
        print("      self:")
        for row in profile["self"][:12]:
            print(f"        {row['share']:6.1%}  {row['frame']}")
        print("      by part of the server:")
        for row in profile["categories"]:
            print(f"        {row['share']:6.1%}  {row['part']}")
    return result


# --------------------------------------------------------------------------------------------------
# optional py-spy profile of the server during a measured run (distorts the numbers; not for the record)


def start_profiler(server: Server, out: Path, duration: float) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None:
        raise BenchError("--profile needs py-spy:  .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        spy,
        "record",
        "-p",
        str(server.pid),
        "--subprocesses",
        "--gil",
        "-r",
        "200",
        "-d",
        str(max(1, int(duration) - 1)),
        "-f",
        "raw",
        "-o",
        str(out),
        *shlex.split(os.environ.get("BENCH_PYSPY_ARGS", "")),  # e.g. "--native"
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(spy: subprocess.Popen[bytes], out: Path) -> dict[str, Any] | None:
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if not out.exists():
        return None
    return summarize_profile(out)


def summarize_profile(path: Path, top: int = 80) -> dict[str, Any]:
    """Collapsed py-spy stacks -> the frames (function + file, no line) with the most samples."""
    inclusive: dict[str, int] = {}
    self_time: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        if frames:
            self_time[frames[-1]] = self_time.get(frames[-1], 0) + n

    def rank(d: dict[str, int]) -> list[dict[str, Any]]:
        rows = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [{"frame": f, "samples": n, "share": round(n / max(total, 1), 4)} for f, n in rows]

    return {
        "samples": total,
        "categories": categorize_profile(path),
        "inclusive": rank(inclusive),
        "self": rank(self_time),
    }


# Where a sample belongs: the first rule whose marker appears anywhere in its stack wins.
PROFILE_GROUPS: list[tuple[str, str]] = [
    ("gc_collect_main", "cyclic garbage collector (needs py-spy --native to be seen)"),
    ("_EventWriter._run", "inventory engine: batch writer"),
    ("OutboxRelay", "outbox relay"),
    ("Sweeper", "hold sweeper"),
    ("RequestResponseCycle.run_asgi", "request handling (uvicorn, Starlette, FastAPI, endpoint)"),
    ("HttpToolsProtocol", "HTTP parsing and connection handling (uvicorn)"),
]
REQUEST_PARTS: list[tuple[str, str]] = [
    ("InventoryEngine.hold", "handing the hold to the engine"),
    ("_match", "routing"),
    ("matches", "routing"),
    ("_get_routes_version", "routing"),
    ("serialize_response", "response serialization"),
    ("solve_dependencies", "dependencies, parameters and body validation"),
    ("RequestResponseCycle.send", "sending the response (socket write)"),
    ("Request.body", "reading the body"),
]


def categorize_profile(path: Path) -> list[dict[str, Any]]:
    """Shares of the samples per part of the server (GC first, then engine, relay, request handling)."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        group = next(
            (name for marker, name in PROFILE_GROUPS if any(marker in f for f in frames)), "event loop, other"
        )
        if group.startswith("request handling"):
            part = next(
                (name for marker, name in REQUEST_PARTS if any(marker in f for f in frames)),
                "middleware, Request/Response objects, endpoint",
            )
            group = f"{group}: {part}"
        counts[group] = counts.get(group, 0) + n
    rows = sorted(counts.items(), key=lambda kv: -kv[1])
    return [{"part": k, "samples": v, "share": round(v / max(total, 1), 4)} for k, v in rows]


# --------------------------------------------------------------------------------------------------
# database


async def recreate_database(admin_dsn: str, name: str) -> None:
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


async def postgres_info(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        info = {}
        settings = ("server_version", "synchronous_commit", "fsync", "wal_sync_method", "max_connections")
        for setting in settings:
            info[setting] = await conn.fetchval(f"SHOW {setting}")
        info["version"] = await conn.fetchval("SELECT version()")
        return info
    finally:
        await conn.close()


async def commit_probe(dsn: str, n: int = 300) -> dict[str, float]:
    """Latency of a one-row INSERT committed on its own: what one durable commit costs here."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_commit_probe (id bigserial PRIMARY KEY, v int)")
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            await conn.execute("INSERT INTO bench_commit_probe (v) VALUES ($1)", i)
            times.append((time.perf_counter() - t0) * 1000)
        await conn.execute("DROP TABLE bench_commit_probe")
    finally:
        await conn.close()
    times.sort()
    return {
        "commits": n,
        "p50_ms": round(times[n // 2], 3),
        "p99_ms": round(times[min(n - 1, int(n * 0.99))], 3),
        "mean_ms": round(sum(times) / n, 3),
    }


async def stream_backlog(dsn: str, wait: float) -> dict[str, Any]:
    """With --stream-worker, right after a holds run: how many domain events the worker had not streamed
    yet, and how long it then took to stream them all (bounded by ``wait``)."""
    conn = await asyncpg.connect(dsn)
    try:
        positions = await conn.fetchval("SELECT to_regclass('outbox_lanes')") is not None

        async def waiting() -> int:
            if positions:
                return (await backlogs(conn))["stream"]
            # a --commit from before the lanes kept positions
            return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE streamed_at IS NULL"))

        behind = await waiting()
        t0 = time.monotonic()
        left = behind
        while left and time.monotonic() - t0 < wait:
            await asyncio.sleep(0.1)
            left = await waiting()
        return {
            "behind_at_end": behind,
            "left_after_wait": left,
            "drained_after_s": round(time.monotonic() - t0, 1) if not left else None,
        }
    finally:
        await conn.close()


async def oversell_check(dsn: str, ok_by_event: dict[int, int]) -> dict[str, Any]:
    """Nothing oversold, counters match the live holds, and every 201 has its hold row."""
    conn = await asyncpg.connect(dsn)
    try:
        quota_rows = await conn.fetch("SELECT id, event_id, capacity, held, sold FROM quotas ORDER BY id")
        live = {
            r["quota_id"]: int(r["n"])
            for r in await conn.fetch(
                """
                SELECT ttq.quota_id, SUM(hl.quantity) AS n
                FROM holds h
                JOIN hold_lines hl ON hl.hold_id = h.id
                JOIN ticket_type_quotas ttq ON ttq.ticket_type_id = hl.ticket_type_id
                WHERE h.status IN ('active', 'ordered')
                GROUP BY ttq.quota_id
                """
            )
        }
        holds_by_event = {
            r["event_id"]: int(r["n"])
            for r in await conn.fetch("SELECT event_id, count(*) AS n FROM holds GROUP BY event_id")
        }
        lineless = await conn.fetchval(
            "SELECT count(*) FROM holds h "
            "WHERE NOT EXISTS (SELECT 1 FROM hold_lines l WHERE l.hold_id = h.id)"
        )
        commits = {
            r["aggregate_id"]: (int(r["placed"]), int(r["changed"]))
            for r in await conn.fetch(
                """
                SELECT aggregate_id,
                       count(*) FILTER (WHERE type = 'hold.placed') AS placed,
                       count(*) FILTER (WHERE type = 'inventory.changed') AS changed
                FROM outbox WHERE aggregate_type = 'event' GROUP BY aggregate_id
                """
            )
        }
    finally:
        await conn.close()
    failures: list[str] = []
    quotas = []
    for q in quota_rows:
        held, sold, cap = int(q["held"]), int(q["sold"]), int(q["capacity"])
        live_n = live.get(q["id"], 0)
        ok = held >= 0 and sold >= 0 and held + sold <= cap and held == live_n
        if held + sold > cap:
            failures.append(f"quota {q['id']}: held {held} + sold {sold} > capacity {cap}")
        if held != live_n:
            failures.append(f"quota {q['id']}: held counter {held} != {live_n} tickets in live holds")
        if held < 0 or sold < 0:
            failures.append(f"quota {q['id']}: negative counter (held {held}, sold {sold})")
        quotas.append(
            {
                "quota_id": q["id"],
                "event_id": q["event_id"],
                "capacity": cap,
                "held": held,
                "sold": sold,
                "tickets_in_live_holds": live_n,
                "ok": ok,
            }
        )
    events = []
    for event_id, seen in sorted(ok_by_event.items()):
        rows = holds_by_event.get(event_id, 0)
        placed, changed = commits.get(event_id, (0, 0))
        if seen > rows:
            failures.append(f"event {event_id}: wrk saw {seen} x 201 but only {rows} holds exist")
        events.append(
            {
                "event_id": event_id,
                "responses_201": seen,
                "hold_rows": rows,
                "hold_placed_events": placed,
                "hold_commits": changed,
                "mean_holds_per_commit": round(placed / changed, 1) if changed else None,
            }
        )
    if lineless:
        failures.append(f"{lineless} holds have no lines")
    return {"passed": not failures, "failures": failures, "quotas": quotas, "events": events}


# --------------------------------------------------------------------------------------------------
# setup through the HTTP API


def create_event(base: str, api_key: str, label: str) -> tuple[int, int]:
    """An on-sale GA event with one 10,000,000-ticket quota; returns (event id, ticket type id)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        starts = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0)
        r = client.post(
            "/api/v1/organizer/events",
            json={
                "name": f"Benchmark on-sale {label}",
                "slug": f"bench-{label}-{os.getpid()}",
                "starts_at": starts.isoformat(),
                "status": "on_sale",
            },
        )
        r.raise_for_status()
        event_id = r.json()["id"]
        r = client.post(
            f"/api/v1/organizer/events/{event_id}/quotas", json={"name": "GA", "capacity": 10_000_000}
        )
        r.raise_for_status()
        quota_id = r.json()["id"]
        r = client.post(
            f"/api/v1/organizer/events/{event_id}/ticket-types",
            json={
                "name": "GA",
                "kind": "admission",
                "price_minor": 4500,
                "quota_ids": [quota_id],
                "max_per_order": 10,
            },
        )
        r.raise_for_status()
        return int(event_id), int(r.json()["id"])


# --------------------------------------------------------------------------------------------------
# machine and reporting


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "nproc": int(nproc) if nproc.isdigit() else os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).strip().splitlines()[0],
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def source_info() -> dict[str, Any]:
    """The commit measured and whether src/ differs from it (read-only git calls)."""

    def git(*a: str) -> str:
        try:
            out = subprocess.run(
                ["git", "--no-optional-locks", *a], cwd=ROOT, capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout if out.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "src")  # lines "XY path"
    return {
        "commit": git("rev-parse", "HEAD").strip() or None,
        "src_modified": [ln[3:] for ln in changed.splitlines() if len(ln) > 3],
    }


def export_commit(commit: str, dest: Path) -> dict[str, Any]:
    """Writes src/ of ``commit`` under ``dest`` with `git archive` (read-only for the repository)."""
    sha = subprocess.run(
        ["git", "--no-optional-locks", "rev-parse", "--verify", f"{commit}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    if sha.returncode != 0:
        raise BenchError(f"unknown commit {commit!r}: {sha.stderr.strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "--no-optional-locks", "archive", "--format=tar", sha.stdout.strip(), "src"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    if archive.returncode != 0:
        raise BenchError(f"git archive failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
    return {"commit": sha.stdout.strip(), "src_modified": [], "exported_to": str(dest / "src")}


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def print_summary(report: dict[str, Any]) -> None:
    print("\n" + "=" * 100)
    print("SUMMARY")
    print(f"command: {report['command']}")
    src = report["source"]
    print(
        f"source: commit {src['commit']}"
        + (f", src/ modified: {src['src_modified']}" if src["src_modified"] else "")
    )
    m, pg = report["machine"], report["postgres"]
    print(f"machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['memory']}; {m['wrk']}")
    print(
        f"postgres: {pg['server_version']}, synchronous_commit={pg['synchronous_commit']}, "
        f"fsync={pg['fsync']}, wal_sync_method={pg['wal_sync_method']}"
    )
    cfg = report["config"]
    print(
        f"workers {cfg['workers']}"
        + (" + an `admitone worker` for the event stream" if cfg.get("stream_worker") else "")
        + f", wrk threads {cfg['threads'] or 'one per connection'}, "
        f"{cfg['duration_s']:g}s measured after "
        f"{cfg['warmup_s']:g}s warm-up, median of {cfg['repeat']} run(s), "
        f"hold TTL {cfg['hold_ttl_seconds']}s"
        + (" -- PROFILED, numbers distorted" if cfg["profiled"] else "")
    )
    header = (
        f"{'conns':>5} | {'baseline req/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'err':>5} | "
        f"{'holds/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-201':>7} {'sock err':>8} | {'ratio':>5} "
        f"{'pairs':>5} {'cpu':>5}"
    )
    print(header)
    print("-" * len(header))
    for run in report["runs"]:
        b, h = run["baseline"], run["holds"]
        print(
            f"{run['connections']:>5} | {fmt(b['ok_per_s']):>14} {fmt(b.get('p50_ms'), '.2f'):>8} "
            f"{fmt(b.get('p99_ms'), '.2f'):>8} {b['errors']:>5} | {fmt(h['ok_per_s']):>9} "
            f"{fmt(h.get('p50_ms'), '.2f'):>8} {fmt(h.get('p99_ms'), '.2f'):>8} "
            f"{sum(h['other_statuses'].values()):>7} {sum(h['socket_errors'].values()):>8} | "
            f"{fmt(run['ratio'], '.2f'):>5} {fmt(run.get('ratio_median_of_pairs'), '.2f'):>5} "
            f"{fmt(run.get('cpu_ratio_median_of_pairs'), '.2f'):>5}"
        )
    print(
        "ratio = holds/s / baseline req/s of the median runs; pairs = median of the ratios of back-to-back "
        "runs;\ncpu = baseline server CPU per response / holds server CPU per 201 (median over pairs)"
    )
    print(
        "CPU in cores during the measured runs (server = the uvicorn process tree"
        + (" plus the stream worker;" if report["config"].get("stream_worker") else ";")
    )
    print("other = everything on the machine that is not the server, PostgreSQL or wrk):")
    for run in report["runs"]:
        for kind in ("baseline", "holds"):
            cpu = run[kind]["cpu"]
            print(
                f"  c={run['connections']:<4d} {kind:8s} server {cpu['server_cores']:.2f}"
                + (f" (worker {cpu['worker_cores']:.2f})" if cpu.get("worker_cores") else "")
                + "  postgres "
                f"{cpu['postgres_cores']:.2f}  wrk {cpu['wrk_cores']:.2f}  other {cpu['other_cores']:.2f}  "
                f"(machine busy {cpu['machine_busy_cores']:.2f} of {report['machine']['nproc']}); "
                f"server CPU {run[kind]['server_cpu_ms_per_ok']} ms per {run[kind]['ok_status']}"
            )
    t = report.get("target")
    if t:
        print(
            f"target at {t['connections']} connections: holds/s >= {TARGET_HOLDS_PER_S:,.0f} "
            f"({'met' if t['holds_ok'] else 'NOT met'}), p99 < {TARGET_P99_MS:g} ms "
            f"({'met' if t['p99_ok'] else 'NOT met'}), ratio >= {TARGET_RATIO} "
            f"({'met' if t['ratio_ok'] else 'NOT met'}) -> {'MET' if t['met'] else 'NOT MET'}"
        )
    check = report["oversell_check"]
    for e in check["events"]:
        print(
            f"event {e['event_id']}: {e['responses_201']} x 201 seen, {e['hold_rows']} hold rows, "
            f"{e['hold_commits']} commits ({e['mean_holds_per_commit']} holds/commit)"
        )
    print(f"oversell check: {'PASS' if check['passed'] else 'FAIL'}")
    for failure in check["failures"]:
        print(f"  {failure}")


# --------------------------------------------------------------------------------------------------


def wait_for_quiet(limit_s: float, max_busy_cores: float) -> None:
    """Waits (at most ``limit_s``) until the machine is nearly idle while the servers idle between runs."""
    if limit_s <= 0:
        return
    deadline = time.monotonic() + limit_s
    ncpu = os.cpu_count() or 1
    while True:
        busy0, total0 = cpu_jiffies()
        time.sleep(1.0)
        busy1, total1 = cpu_jiffies()
        busy = (busy1 - busy0) / max(total1 - total0, 1) * ncpu
        if busy <= max_busy_cores:
            return
        if time.monotonic() >= deadline:
            print(f"  machine still busy ({busy:.2f} cores) after {limit_s:g}s; measuring anyway", flush=True)
            return
        print(f"  machine busy ({busy:.2f} cores used by other processes); waiting", flush=True)
        time.sleep(4.0)


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return round(ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2, 3)


def median_run(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median successful rate (the lower middle one for an even count)."""
    ordered = sorted(samples, key=lambda r: r["ok_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", default="256", help="wrk connections; a comma list sweeps, e.g. 64,256")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each measured run")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="wrk threads; 0 (default): one per connection, so every request is timed exactly "
        "(with fewer threads the latencies come from wrk's own histogram)",
    )
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers of both servers")
    p.add_argument(
        "--stream-worker",
        action="store_true",
        help="run the event stream in an `admitone worker` process (ADMITONE_STREAM_WORKER=true for the "
        "server); its CPU counts as server CPU",
    )
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "holds.json")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    p.add_argument("--db-name", default="admitone_bench", help="database to create (dropped first)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    p.add_argument("--repeat", type=int, default=1, help="runs per connection count; the median is reported")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the server with py-spy during each holds run (only threads holding the GIL, "
        "i.e. Python CPU; slows the server, so not for the record)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for the machine to be nearly idle",
    )
    p.add_argument(
        "--quiet-cores", type=float, default=0.3, help="'nearly idle': at most this many busy cores"
    )
    p.add_argument(
        "--commit",
        default=None,
        help="measure the src/ of this commit (exported with `git archive` into a temp dir and put first on "
        "PYTHONPATH) instead of the working tree",
    )
    p.add_argument(
        "--stream-drain-wait",
        type=float,
        default=120.0,
        help="with --stream-worker: how long to wait after a holds run for the stream to catch up",
    )
    p.add_argument("--verbose", action="store_true", help="print wrk's own output")
    args = p.parse_args(argv)
    try:
        args.connection_list = [int(c) for c in str(args.connections).split(",") if c.strip()]
    except ValueError:
        p.error("--connections takes integers, e.g. 256 or 64,256")
    if not args.connection_list or min(args.connection_list) < 1:
        p.error("--connections needs at least one positive integer")
    if not 0 <= args.quiet_wait <= 3600:
        p.error("--quiet-wait must lie in [0, 3600]")
    if not 1 <= args.repeat <= 10:
        p.error("--repeat must lie in [1, 10]")
    if args.duration <= 0 or args.duration > 600 or args.warmup < 0 or args.warmup > 60:
        p.error("--duration must lie in (0, 600] and --warmup in [0, 60]")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db_name):
        p.error("--db-name: lower-case letters, digits and _ only")
    host = re.sub(r"^postgres(ql)?://([^@/]*@)?", "", args.pg).split(":")[0].split("/")[0]
    if host not in ("127.0.0.1", "localhost"):
        p.error("--pg must point at 127.0.0.1: the benchmark keeps all traffic local")
    return args


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--summarize-profile"]:
        for name in raw[1:]:
            print(f"{name}:")
            for row in categorize_profile(Path(name)):
                print(f"  {row['share']:6.1%}  {row['part']}")
        return 0
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. Install it with:  apt-get install -y wrk  (Debian/Ubuntu)", file=sys.stderr
        )
        return 2
    for tool in ("admitone",):
        if not (VENV_BIN / tool).exists():
            print(f"{VENV_BIN / tool} missing: run this with the project's venv python", file=sys.stderr)
            return 2

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    command = shlex.join(
        [
            Path(sys.executable).relative_to(ROOT).as_posix()
            if Path(sys.executable).is_relative_to(ROOT)
            else sys.executable,
            os.path.relpath(__file__, ROOT),
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    admin_dsn = args.pg.rstrip("/") + "/postgres"
    bench_dsn = args.pg.rstrip("/") + "/" + args.db_name
    db_url = "postgresql+asyncpg://" + bench_dsn.split("://", 1)[1]
    tmp = Path(tempfile.mkdtemp(prefix="admitone-bench-"))
    env = {
        **os.environ,
        "ADMITONE_DATABASE_URL": db_url,
        "ADMITONE_DATA_DIR": str(tmp / "data"),
        "ADMITONE_PUBLIC_URL": "http://127.0.0.1:8000",
        "ADMITONE_LOG_LEVEL": "warning",
        "COLUMNS": "200",  # keep rich from wrapping the API key line
        "PYTHONUNBUFFERED": "1",
    }
    hold_ttl = int(env.setdefault("ADMITONE_HOLD_TTL_SECONDS", "600"))
    if args.stream_worker:
        env["ADMITONE_STREAM_WORKER"] = "true"
        # The server and the worker must sign with the same key; neither should generate its own.
        env.setdefault("ADMITONE_SECRET_KEY", secrets.token_urlsafe(48))
    servers: list[Server] = []
    db_created = False
    exit_code = 2
    try:
        print(f"database {args.db_name}: recreating", flush=True)
        asyncio.run(recreate_database(admin_dsn, args.db_name))
        db_created = True
        if args.commit:
            source = export_commit(args.commit, tmp / "source")
            env["PYTHONPATH"] = source["exported_to"] + os.pathsep + env.get("PYTHONPATH", "")
            print(f"  measuring src/ of commit {source['commit']} ({source['exported_to']})", flush=True)
        else:
            source = source_info()
        pg = asyncio.run(postgres_info(bench_dsn))
        pg["single_row_commit"] = asyncio.run(commit_probe(bench_dsn))
        print(
            f"  one-row durable commit: p50 {pg['single_row_commit']['p50_ms']} ms, "
            f"p99 {pg['single_row_commit']['p99_ms']} ms",
            flush=True,
        )
        run_cli(["migrate"], env)
        out = run_cli(["organizer", "create", "bench"], env)
        m = re.search(r"^api key\s+(\S+)", out, re.M)
        if not m:
            raise BenchError(f"no api key in `admitone organizer create` output:\n{out}")
        api_key = m.group(1)

        base_port, app_port = free_port(), free_port()
        baseline = start_server(
            "baseline",
            [
                str(VENV_BIN / "python"),
                "-m",
                "uvicorn",
                "baseline_app:app",
                "--app-dir",
                str(BENCH_DIR),
                "--host",
                HOST,
                "--port",
                str(base_port),
                "--workers",
                str(args.workers),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            tmp,
            base_port,
            servers,
        )
        admitone = start_server(
            "admitone",
            [
                str(VENV_BIN / "admitone"),
                "serve",
                "--host",
                HOST,
                "--port",
                str(app_port),
                "--workers",
                str(args.workers),
                "--no-migrate",
            ],
            env,
            tmp,
            app_port,
            servers,
        )
        worker: Server | None = None
        if args.stream_worker:
            worker = start_server("worker", [str(VENV_BIN / "admitone"), "worker"], env, tmp, 0, servers)
        wait_ready(baseline, f"http://{HOST}:{base_port}/health")
        wait_ready(admitone, f"http://{HOST}:{app_port}/health/ready")

        app_base = f"http://{HOST}:{app_port}"
        plan = []
        for c in args.connection_list:
            event_id, type_id = create_event(app_base, api_key, f"c{c}")
            body = json.dumps(
                {"tickets": [{"ticket_type_id": type_id, "quantity": 1}]}, separators=(",", ":")
            )
            plan.append((c, event_id, body))
            r = httpx.get(f"{app_base}/api/v1/events/{event_id}/availability", timeout=10)
            r.raise_for_status()
            print(
                f"  event {event_id} for c={c}: available {r.json()['ticket_types'][0]['available']:,}",
                flush=True,
            )

        runs = []
        ok_by_event: dict[int, int] = {}
        print(
            f"measuring: {args.warmup:g}s warm-up + {args.duration:g}s per run, {args.repeat}x per "
            "connection count (the median run is reported)",
            flush=True,
        )
        for c, event_id, body in plan:
            samples_b, samples_h = [], []
            for i in range(args.repeat):
                wait_for_quiet(args.quiet_wait, args.quiet_cores)
                profile_to = args.out.parent / f"profile-baseline-c{c}-{i + 1}.txt" if args.profile else None
                samples_b.append(measure("baseline", baseline, "/echo", body, "200", args, c, profile_to))
                profile_to = args.out.parent / f"profile-holds-c{c}-{i + 1}.txt" if args.profile else None
                h = measure(
                    "holds",
                    admitone,
                    f"/api/v1/events/{event_id}/holds",
                    body,
                    "201",
                    args,
                    c,
                    profile_to,
                    worker,
                )
                if worker is not None:
                    h["stream"] = asyncio.run(stream_backlog(bench_dsn, args.stream_drain_wait))
                    print(
                        f"    stream worker: {h['stream']['behind_at_end']:,} domain events not yet streamed "
                        f"when wrk stopped; all streamed {h['stream']['drained_after_s']} s later",
                        flush=True,
                    )
                samples_h.append(h)
                ok_by_event[event_id] = ok_by_event.get(event_id, 0) + h["ok"] + h["warmup_ok"]
            b, h = median_run(samples_b), median_run(samples_h)
            runs.append(
                {
                    "connections": c,
                    "event_id": event_id,
                    "request_body": body,
                    "request_body_bytes": len(body),
                    "baseline": b,
                    "holds": h,
                    "ratio": round(h["ok_per_s"] / b["ok_per_s"], 3) if b["ok_per_s"] else None,
                    # Each baseline run is followed at once by its holds run; their ratio is less exposed
                    # to load that comes and goes on the machine than the ratio of the two medians.
                    "ratio_median_of_pairs": median(
                        [
                            y["ok_per_s"] / x["ok_per_s"]
                            for x, y in zip(samples_b, samples_h, strict=True)
                            if x["ok_per_s"]
                        ]
                    ),
                    # Holds per CPU second of the server / baseline responses per CPU second of the server.
                    "cpu_ratio_median_of_pairs": median(
                        [
                            x["server_cpu_ms_per_ok"] / y["server_cpu_ms_per_ok"]
                            for x, y in zip(samples_b, samples_h, strict=True)
                            if x["server_cpu_ms_per_ok"] and y["server_cpu_ms_per_ok"]
                        ]
                    ),
                    "samples": {
                        kind: [
                            {
                                "ok_per_s": x["ok_per_s"],
                                "p50_ms": x.get("p50_ms"),
                                "p99_ms": x.get("p99_ms"),
                                "server_cpu_ms_per_ok": x["server_cpu_ms_per_ok"],
                                "cpu": x["cpu"],
                            }
                            for x in samples
                        ]
                        for kind, samples in (("baseline", samples_b), ("holds", samples_h))
                    },
                }
            )

        stops = [stop_server(server) for server in reversed(servers)]
        log_text = admitone.log_path.read_text(errors="replace")
        server_log = {
            "batch_retries": log_text.count("retrying one by one"),
            "tracebacks": log_text.count("Traceback"),
            "tail": log_text.splitlines()[-20:],
        }
        servers.clear()

        check = asyncio.run(oversell_check(bench_dsn, ok_by_event))
        report: dict[str, Any] = {
            "command": command,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "source": source,
            "postgres": pg,
            "config": {
                "connections": args.connection_list,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "threads": args.threads,
                "workers": args.workers,
                "stream_worker": args.stream_worker,
                "hold_ttl_seconds": hold_ttl,
                "batch_max": int(env.get("ADMITONE_BATCH_MAX", "512")),
                "db_pool_size": int(env.get("ADMITONE_DB_POOL_SIZE", "10")),
                "wrk_timeout": "10s",
                "quiet_wait_s": args.quiet_wait,
                "quiet_cores": args.quiet_cores,
                "repeat": args.repeat,
                "profiled": args.profile,
                "commit_option": args.commit,
            },
            "runs": runs,
            "server_log": server_log,
            "server_stops": stops,
            "oversell_check": check,
        }
        target_run = next((r for r in runs if r["connections"] == TARGET_CONNECTIONS), None)
        if target_run is not None:
            h = target_run["holds"]
            holds_ok = h["ok_per_s"] >= TARGET_HOLDS_PER_S
            p99_ok = h.get("p99_ms") is not None and h["p99_ms"] < TARGET_P99_MS
            ratio_ok = target_run["ratio"] is not None and target_run["ratio"] >= TARGET_RATIO
            report["target"] = {
                "connections": TARGET_CONNECTIONS,
                "holds_per_s_min": TARGET_HOLDS_PER_S,
                "p99_ms_max": TARGET_P99_MS,
                "ratio_min": TARGET_RATIO,
                "holds_ok": holds_ok,
                "p99_ok": p99_ok,
                "ratio_ok": ratio_ok,
                "met": holds_ok and p99_ok and ratio_ok,
            }
        print_summary(report)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.out}")
        exit_code = 0 if check["passed"] else 1
    except BenchError as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        exit_code = 2
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        exit_code = 130
    except Exception:
        exit_code = 2
        raise
    finally:
        # Every server started, whatever happened above (each on its own, so one failure stops no other).
        for server in reversed(servers):
            try:
                stop_server(server)
            except Exception as exc:
                with contextlib.suppress(OSError):
                    print(f"could not stop {server.name} (pid {server.pid}): {exc}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
