"""Hold throughput on PostgreSQL, against a plain FastAPI baseline, with an oversell check.

    .venv/bin/python bench/holds.py [--connections 64,256] [--duration 20] [--threads 2] [--workers 1]
                                    [--out bench/results/holds.json]

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


def start_server(name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int) -> Server:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    # Own session: the server's uvicorn workers share its process group, so the group can be
    # signalled by the server's PID if a worker outlives the master.
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    print(f"  started {name} (pid {proc.pid}) on {HOST}:{port}: {shlex.join(argv)}", flush=True)
    return Server(name, proc, port, log_path)


def stop_server(server: Server) -> None:
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # Anything left in the server's own process group (its workers) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    print(f"  stopped {server.name} (pid {server.pid}, exit {proc.returncode})", flush=True)


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
        return {
            "server_cores": round(server_c, 2),
            "postgres_cores": round(postgres_c, 2),
            "wrk_cores": round(wrk_c, 2),
            "machine_busy_cores": round(busy_cores, 2),
            # CPU the benchmark did not use itself: other tenants of the machine, the kernel, ...
            "other_cores": round(max(busy_cores - server_c - postgres_c - wrk_c, 0.0), 2),
        }


# --------------------------------------------------------------------------------------------------
# wrk


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk time '{text}'")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(stdout: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", stdout, re.M)
        if m:
            out[f"p{pct}_ms"] = round(to_ms(m.group(1)), 3)
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
    m = re.search(r"^BENCH_SUMMARY (.*)$", stdout, re.M)
    if not m:
        raise BenchError(f"wrk printed no BENCH_SUMMARY line:\n{stdout}")
    summary = {k: int(v) for k, v in (p.split("=") for p in m.group(1).split())}
    out["duration_s"] = summary["duration_us"] / 1e6
    out["requests"] = summary["requests"]
    return out


def run_wrk(
    url: str, path: str, body: str, connections: int, threads: int, duration: float, *, latency: bool
) -> tuple[dict[str, Any], str, list[str]]:
    threads = max(1, min(threads, connections))
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s"]
    if latency:
        argv.append("--latency")
    argv += ["-s", str(HOLD_LUA), url + path]
    env = {**os.environ, "BENCH_PATH": path, "BENCH_BODY": body}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return parse_wrk(out.stdout), out.stdout, argv


def measure(
    kind: str,
    server: Server,
    path: str,
    body: str,
    ok_status: str,
    args: argparse.Namespace,
    connections: int,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    url = f"http://{HOST}:{server.port}"
    warm: dict[str, Any] = {"status_counts": {}}
    if args.warmup > 0:
        warm, _, _ = run_wrk(url, path, body, connections, args.threads, args.warmup, latency=False)
    spy = start_profiler(server, profile_to, args.duration) if profile_to else None
    probe = CpuProbe(server.pid)
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
        "wrk_argv": argv,
    }
    if profile is not None:
        result["profile"] = profile
    print(
        f"  {kind:8s} c={connections:<4d} {result['ok_per_s']:>9.1f} {ok_status}/s   "
        f"p50 {res.get('p50_ms', float('nan')):8.2f} ms   p99 {res.get('p99_ms', float('nan')):8.2f} ms   "
        f"non-2xx {res['non_2xx']}  socket errors {sum(res['socket_errors'].values())}   "
        f"cpu server {cpu['server_cores']} pg {cpu['postgres_cores']} wrk {cpu['wrk_cores']} "
        f"other {cpu['other_cores']} cores",
        flush=True,
    )
    if args.verbose:
        print(raw)
    if profile is not None:
        print(f"    profile ({profile['samples']} samples, {profile_to}); inclusive share of busy samples:")
        for row in profile["inclusive"][:25]:
            print(f"      {row['share']:6.1%}  {row['frame']}")
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


def summarize_profile(path: Path, top: int = 40) -> dict[str, Any]:
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

    return {"samples": total, "inclusive": rank(inclusive), "self": rank(self_time)}


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


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def print_summary(report: dict[str, Any]) -> None:
    print("\n" + "=" * 100)
    print("SUMMARY")
    print(f"command: {report['command']}")
    m, pg = report["machine"], report["postgres"]
    print(f"machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['memory']}; {m['wrk']}")
    print(
        f"postgres: {pg['server_version']}, synchronous_commit={pg['synchronous_commit']}, "
        f"fsync={pg['fsync']}, wal_sync_method={pg['wal_sync_method']}"
    )
    cfg = report["config"]
    print(
        f"workers {cfg['workers']}, wrk threads {cfg['threads']}, {cfg['duration_s']:g}s measured after "
        f"{cfg['warmup_s']:g}s warm-up, median of {cfg['repeat']} run(s), "
        f"hold TTL {cfg['hold_ttl_seconds']}s"
        + (" -- PROFILED, numbers distorted" if cfg["profiled"] else "")
    )
    header = (
        f"{'conns':>5} | {'baseline req/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'err':>5} | "
        f"{'holds/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-201':>7} {'sock err':>8} | {'ratio':>5}"
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
            f"{fmt(run['ratio'], '.2f'):>5}"
        )
    print("CPU in cores during the measured runs (server = the uvicorn process tree;")
    print("other = everything on the machine that is not the server, PostgreSQL or wrk):")
    for run in report["runs"]:
        for kind in ("baseline", "holds"):
            cpu = run[kind]["cpu"]
            print(
                f"  c={run['connections']:<4d} {kind:8s} server {cpu['server_cores']:.2f}  postgres "
                f"{cpu['postgres_cores']:.2f}  wrk {cpu['wrk_cores']:.2f}  other {cpu['other_cores']:.2f}  "
                f"(machine busy {cpu['machine_busy_cores']:.2f} of {report['machine']['nproc']})"
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


def median_run(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median successful rate (the lower middle one for an even count)."""
    ordered = sorted(samples, key=lambda r: r["ok_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", default="256", help="wrk connections; a comma list sweeps, e.g. 64,256")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each measured run")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers of both servers")
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
    p.add_argument("--verbose", action="store_true", help="print wrk's own output")
    args = p.parse_args(argv)
    try:
        args.connection_list = [int(c) for c in str(args.connections).split(",") if c.strip()]
    except ValueError:
        p.error("--connections takes integers, e.g. 256 or 64,256")
    if not args.connection_list or min(args.connection_list) < 1:
        p.error("--connections needs at least one positive integer")
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
    servers: list[Server] = []
    db_created = False
    exit_code = 2
    try:
        print(f"database {args.db_name}: recreating", flush=True)
        asyncio.run(recreate_database(admin_dsn, args.db_name))
        db_created = True
        pg = asyncio.run(postgres_info(bench_dsn))
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
        )
        servers.append(baseline)
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
        )
        servers.append(admitone)
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
                samples_b.append(measure("baseline", baseline, "/echo", body, "200", args, c))
                profile_to = args.out.parent / f"profile-holds-c{c}-{i + 1}.txt" if args.profile else None
                h = measure(
                    "holds", admitone, f"/api/v1/events/{event_id}/holds", body, "201", args, c, profile_to
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
                    "samples": {
                        "baseline_ok_per_s": [x["ok_per_s"] for x in samples_b],
                        "holds_ok_per_s": [x["ok_per_s"] for x in samples_h],
                        "baseline_p99_ms": [x.get("p99_ms") for x in samples_b],
                        "holds_p99_ms": [x.get("p99_ms") for x in samples_h],
                    },
                }
            )

        for server in reversed(servers):
            stop_server(server)
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
            "postgres": pg,
            "config": {
                "connections": args.connection_list,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "threads": args.threads,
                "workers": args.workers,
                "hold_ttl_seconds": hold_ttl,
                "batch_max": int(env.get("ADMITONE_BATCH_MAX", "512")),
                "db_pool_size": int(env.get("ADMITONE_DB_POOL_SIZE", "10")),
                "wrk_timeout": "10s",
                "repeat": args.repeat,
                "profiled": args.profile,
            },
            "runs": runs,
            "server_log": server_log,
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
    finally:
        for server in reversed(servers):
            stop_server(server)
        if db_created and not args.keep_db:
            try:
                asyncio.run(drop_database(admin_dsn, args.db_name))
                print(f"database {args.db_name}: dropped")
            except Exception as exc:
                print(f"could not drop {args.db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
