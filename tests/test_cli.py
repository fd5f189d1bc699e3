"""The ``admitone`` command, run as a real process on a data directory of its own."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from admitone.core.app import create_app
from admitone.core.clock import ManualClock
from admitone.core.settings import Settings
from admitone.demo.seatmap import demo_venue
from admitone.events.seatmap_io import venue_to_csv
from tests.support import free_port


def _find_admitone() -> str:
    beside_python = Path(sys.executable).parent / "admitone"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("admitone")
    if found is None:
        pytest.skip("the admitone command is not installed")
    return found


ADMITONE = _find_admitone()
KEY_PATTERN = re.compile(r"\badm_[0-9a-f]{12}_[A-Za-z0-9_\-]{20,}")
DEMO_SEATS = sum(len(row.seats) for section in demo_venue().sections for row in section.rows)


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any ADMITONE_* setting, plus a data directory and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADMITONE_")}
    # Wide, plain output, so messages are not wrapped or coloured.
    env.update(ADMITONE_DATA_DIR=str(data_dir), COLUMNS="400", NO_COLOR="1", TERM="dumb", **extra)
    return env


def run(
    data_dir: Path, *args: str, timeout: float = 60, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ADMITONE, *args],
        env=cli_env(data_dir, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def query(data_dir: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "admitone.db") as conn:
        return list(conn.execute(sql, params))


@pytest.fixture
def data_dir(tmp_path: Path, sqlite_template: Path) -> Path:
    """A data directory holding a migrated database."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "admitone.db")
    return data


def create_organizer(data_dir: Path, name: str = "Acme", *args: str) -> tuple[int, str]:
    result = run(data_dir, "organizer", "create", name, *args)
    assert result.returncode == 0, result.stderr
    organizer_id = re.search(r"organizer id\s+(\d+)", result.stdout)
    key = KEY_PATTERN.search(result.stdout)
    assert organizer_id is not None, result.stdout
    assert key is not None, result.stdout
    return int(organizer_id.group(1)), key.group(0)


# --------------------------------------------------------------------------- migrate, organizer


def test_migrate_creates_the_database_and_can_run_again(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    first = run(data, "migrate")
    assert first.returncode == 0, first.stderr
    assert "Database is up to date" in first.stdout
    assert str((data / "admitone.db").resolve()) in first.stdout
    tables = {r[0] for r in query(data, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "organizers",
        "api_keys",
        "venues",
        "seats",
        "events",
        "holds",
        "orders",
        "alembic_version",
    } <= tables
    version = query(data, "SELECT version_num FROM alembic_version")
    assert len(version) == 1

    again = run(data, "migrate")
    assert again.returncode == 0, again.stderr
    assert query(data, "SELECT version_num FROM alembic_version") == version


def test_organizer_create_prints_a_key_that_authenticates(data_dir: Path) -> None:
    organizer_id, key = create_organizer(data_dir, "Acme")
    assert key.startswith("adm_")
    rows = query(
        data_dir,
        "SELECT o.name, k.prefix, k.scopes FROM organizers o JOIN api_keys k ON k.organizer_id = o.id",
    )
    assert rows == [("Acme", key.split("_")[1], "read,write")]
    # Only a hash is stored, never the key itself.
    assert query(data_dir, "SELECT count(*) FROM api_keys WHERE key_hash = ?", key) == [(0,)]

    async def me(api_key: str) -> httpx.Response:
        app = create_app(Settings(data_dir=data_dir, database_url=None), ManualClock())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.get(
                    "/api/v1/organizer/me", headers={"Authorization": f"Bearer {api_key}"}
                )

    ok = asyncio.run(me(key))
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"id": organizer_id, "name": "Acme", "scopes": ["read", "write"]}
    assert asyncio.run(me(key[:-1] + ("x" if key[-1] != "x" else "y"))).status_code == 401


def test_organizer_create_with_read_scope_and_bad_scope(data_dir: Path) -> None:
    _, key = create_organizer(data_dir, "Reader", "--scopes", "read")
    assert query(data_dir, "SELECT scopes FROM api_keys WHERE prefix = ?", key.split("_")[1]) == [("read",)]

    bad = run(data_dir, "organizer", "create", "Nope", "--scopes", "read,admin")
    assert bad.returncode == 2
    assert "Scopes must be among" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert query(data_dir, "SELECT count(*) FROM organizers WHERE name = 'Nope'") == [(0,)]


# --------------------------------------------------------------------------- import-seatmap


def test_import_seatmap_from_csv(data_dir: Path, tmp_path: Path) -> None:
    organizer_id, _ = create_organizer(data_dir)
    path = tmp_path / "hall.csv"
    path.write_text(venue_to_csv(demo_venue()), encoding="utf-8")

    result = run(
        data_dir, "import-seatmap", str(path), "--organizer", str(organizer_id), "--name", "Demo Hall"
    )
    assert result.returncode == 0, result.stderr
    sections = len(demo_venue().sections)
    match = re.search(r"venue (\d+) 'Demo Hall': (\d+) seats in (\d+) sections", result.stdout)
    assert match is not None, result.stdout
    venue_id = int(match.group(1))
    assert int(match.group(2)) == DEMO_SEATS
    assert int(match.group(3)) == sections
    assert DEMO_SEATS >= 2000

    assert query(data_dir, "SELECT organizer_id, name FROM venues WHERE id = ?", venue_id) == [
        (organizer_id, "Demo Hall")
    ]
    assert query(data_dir, "SELECT count(*) FROM seats WHERE venue_id = ?", venue_id) == [(DEMO_SEATS,)]
    assert query(data_dir, "SELECT count(*) FROM sections WHERE venue_id = ?", venue_id) == [(sections,)]


def test_import_seatmap_reports_the_line_of_a_bad_seat(data_dir: Path, tmp_path: Path) -> None:
    organizer_id, _ = create_organizer(data_dir)
    rows = list(csv.reader(io.StringIO(venue_to_csv(demo_venue()))))
    bad_line = 123  # 1-based line of the file; the header is line 1
    rows[bad_line - 1][2] = "twelve"  # the seat number
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = tmp_path / "broken.csv"
    path.write_text(out.getvalue(), encoding="utf-8")

    result = run(data_dir, "import-seatmap", str(path), "--organizer", str(organizer_id), "--name", "Broken")
    assert result.returncode == 2
    assert (
        f"broken.csv line {bad_line}: column 'number' must be a whole number, got 'twelve'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert query(data_dir, "SELECT count(*) FROM venues") == [(0,)]
    assert query(data_dir, "SELECT count(*) FROM seats") == [(0,)]


def test_import_seatmap_for_a_missing_organizer(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "hall.csv"
    path.write_text(venue_to_csv(demo_venue()), encoding="utf-8")

    result = run(data_dir, "import-seatmap", str(path), "--organizer", "99", "--name", "Demo Hall")
    assert result.returncode == 2
    assert "No organizer 99" in result.stderr
    assert "admitone organizer create" in result.stderr
    assert "Traceback" not in result.stderr
    assert query(data_dir, "SELECT count(*) FROM venues") == [(0,)]


def test_import_seatmap_csv_needs_a_venue_name(data_dir: Path, tmp_path: Path) -> None:
    organizer_id, _ = create_organizer(data_dir)
    path = tmp_path / "hall.csv"
    path.write_text(venue_to_csv(demo_venue()), encoding="utf-8")

    result = run(data_dir, "import-seatmap", str(path), "--organizer", str(organizer_id))
    assert result.returncode == 2
    assert "carries no venue name" in result.stderr
    assert query(data_dir, "SELECT count(*) FROM venues") == [(0,)]


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("ADMITONE_DATABASE_URL", "mysql://x", ("migrate",)),
        ("ADMITONE_DATABASE_URL", "mysql://x", ("organizer", "create", "Acme")),
        ("ADMITONE_HOLD_TTL_SECONDS", "5", ("migrate",)),
        ("ADMITONE_SECRET_KEY", "changeme", ("migrate",)),
        ("ADMITONE_LOG_LEVEL", "chatty", ("migrate",)),
    ],
)
def test_invalid_configuration_names_the_variable(
    tmp_path: Path, variable: str, value: str, command: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    result = run(data, *command, **{variable: value})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Invalid configuration" in result.stderr
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data / "admitone.db").exists()


# --------------------------------------------------------------------------- demo


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``admitone demo`` on a free port; yields its base URL and the file its output goes to."""
    port = free_port()
    data = tmp_path / "demo-data"
    out = tmp_path / "demo.out"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [ADMITONE, "demo", "--port", str(port)],
            env=cli_env(data),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"admitone demo exited with {process.returncode}:\n{out.read_text()}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"admitone demo did not get ready in time:\n{out.read_text()}")
            time.sleep(0.2)
        yield base, out
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group of a server started with ``start_new_session``; SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_demo_serves_the_demo_event(demo_server: tuple[str, Path]) -> None:
    base, out = demo_server
    printed = out.read_text()
    assert f"{base}/docs" in printed
    assert f"{base}/redoc" in printed

    with httpx.Client(base_url=base, timeout=20) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        assert "swagger" in docs.text.lower()
        assert client.get("/redoc").status_code == 200
        assert client.get("/openapi.json").json()["info"]["title"] == "admitone"

        events = client.get("/api/v1/events").json()
        demo = [e for e in events if e["slug"] == "admitone-live"]
        assert len(demo) == 1, events
        event_id = demo[0]["id"]
        assert demo[0]["status"] == "on_sale"
        assert demo[0]["seated"] is True
        assert f"{base}/api/v1/events/{event_id}" in printed

        seats = client.get(f"/api/v1/events/{event_id}/seats").json()["seats"]
        assert len(seats) >= 2000
        assert len(seats) == DEMO_SEATS
        assert {s["state"] for s in seats} == {"free"}

        key = KEY_PATTERN.search(printed)
        assert key is not None, printed
        me = client.get("/api/v1/organizer/me", headers={"Authorization": f"Bearer {key.group(0)}"})
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "Demo Organizer"


# --------------------------------------------------------------------------- serve


def test_serve_pings_websockets_at_the_configured_interval(tmp_path: Path) -> None:
    """ADMITONE_WS_PING_INTERVAL_SECONDS reaches uvicorn: an open WebSocket gets a ping that soon (the
    default, 20 s, would not come within the 5 s allowed)."""
    import base64
    import socket

    port = free_port()
    out = tmp_path / "serve.out"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [ADMITONE, "serve", "--port", str(port)],
            env=cli_env(tmp_path / "data", ADMITONE_WS_PING_INTERVAL_SECONDS="1"),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, out.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        # The dashboard socket waits (10 s) for its first message: an open, quiet WebSocket.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            key = base64.b64encode(os.urandom(16)).decode()
            conn.sendall(
                (
                    "GET /api/v1/organizer/events/1/analytics/live HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            received = b""
            while b"\r\n\r\n" not in received:
                received += conn.recv(4096)
            head, _, rest = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            opened = time.monotonic()
            while len(rest) < 1:
                rest += conn.recv(4096)
            waited = time.monotonic() - opened
        assert rest[0] == 0x89, f"expected a ping frame first, got {rest[:8]!r}"
        assert waited < 5, f"the first ping came after {waited:.1f} s"
    finally:
        stop_group(process)
