"""The ``admitone`` command: serve, worker, demo, migrate, organizer, import-seatmap, asyncapi."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from admitone.core.settings import Settings

app = typer.Typer(
    help="admitone: ticketing for on-sales where demand far exceeds supply.", no_args_is_help=True
)
organizer_app = typer.Typer(help="Organizers and their API keys.", no_args_is_help=True)
app.add_typer(organizer_app, name="organizer")
console = Console()
err = Console(stderr=True)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err.print("[bold red]Invalid configuration:[/]")
        for e in exc.errors():
            name = "ADMITONE_" + "_".join(str(p) for p in e["loc"]).upper()
            err.print(f"  {name}: {e['msg']}")
        raise typer.Exit(2) from exc


def _uvicorn(host: str, port: int, workers: int, settings: Settings) -> None:
    import os

    import uvicorn

    # Unless configured, this server is reached where it listens (the test payment provider calls it back).
    if "ADMITONE_PUBLIC_URL" not in os.environ:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        os.environ["ADMITONE_PUBLIC_URL"] = f"http://{shown}:{port}"

    uvicorn.run(
        "admitone.core.app:create_server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
    )


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = True,
) -> None:
    """Runs the API server (uvicorn with uvloop and httptools)."""
    settings = load_settings()
    if migrate:
        from admitone.core.migrate import migrate as run_migrations

        run_migrations(settings)
    _uvicorn(host, port, workers, settings)


@app.command()
def worker() -> None:
    """Runs the event stream (webhooks, e-mail, analytics, Kafka) for servers with ADMITONE_STREAM_WORKER."""
    import logging

    from admitone.core.worker import run_worker

    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.stream_worker:
        err.print(
            "[yellow]ADMITONE_STREAM_WORKER is not set: `admitone serve` runs the stream lane itself as "
            "well; set it to true for the servers so that only workers run it.[/]"
        )
    import uvloop

    # The same event loop as the servers': the worker's relay and consumers are socket-bound.
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_worker(settings))


@app.command()
def demo(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Starts a demo server: SQLite in the data directory, a 2,000-seat hall and an event on sale."""
    import datetime as dt

    from admitone.core.db import Database
    from admitone.core.migrate import migrate as run_migrations
    from admitone.demo.seed import seed

    settings = load_settings()
    run_migrations(settings)

    async def _seed() -> None:
        db = Database(settings)
        try:
            info = await seed(db, dt.datetime.now(dt.UTC))
        finally:
            await db.dispose()
        base = f"http://{host}:{port}"
        console.print("[bold green]admitone demo[/]" + (" (new data)" if info.created else ""))
        console.print(f"  database      {settings.resolved_database_url}")
        console.print(f"  Swagger UI    {base}/docs")
        console.print(f"  ReDoc         {base}/redoc")
        console.print(f"  buyer app     {base}/events/{info.event_id}")
        console.print(f"  dashboard     {base}/organizer/dashboard")
        console.print(f"  check-in      {base}/organizer/checkin")
        console.print(f"  event         {base}/api/v1/events/{info.event_id}")
        console.print(f"  seat map      {base}/api/v1/events/{info.event_id}/seats")
        console.print(f"  organizer key {info.api_key}")

    asyncio.run(_seed())
    _uvicorn(host, port, 1, settings)


@app.command("migrate")
def migrate_command() -> None:
    """Applies pending database migrations."""
    from admitone.core.migrate import migrate as run_migrations

    settings = load_settings()
    run_migrations(settings)
    console.print(f"[green]Database is up to date[/] ({settings.resolved_database_url})")


@organizer_app.command("create")
def organizer_create(
    name: Annotated[str, typer.Argument(help="The organizer's name.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, write, checkin.")] = "read,write",
) -> None:
    """Creates an organizer and prints its API key (shown only this once)."""
    import datetime as dt

    from admitone.core.db import Database
    from admitone.core.errors import DomainError
    from admitone.organizers import service

    settings = load_settings()

    async def _create() -> None:
        db = Database(settings)
        try:
            async with db.write() as conn:
                created = await service.create_organizer(
                    conn,
                    name,
                    dt.datetime.now(dt.UTC),
                    tuple(s.strip() for s in scopes.split(",") if s.strip()),
                )
        finally:
            await db.dispose()
        console.print(f"organizer id  {created.organizer_id}")
        console.print(f"scopes        {','.join(created.scopes)}")
        console.print(f"api key       {created.api_key}")
        console.print("[yellow]Store the key now; it cannot be shown again.[/]")

    try:
        asyncio.run(_create())
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(2) from exc


@app.command("import-seatmap")
def import_seatmap(
    path: Annotated[Path, typer.Argument(help="A .json or .csv seat map.", exists=True, dir_okay=False)],
    organizer: Annotated[int, typer.Option(help="Organizer id that will own the venue.", min=1)],
    name: Annotated[str | None, typer.Option(help="Venue name (required for CSV).")] = None,
) -> None:
    """Imports a venue with its seat map from JSON or CSV."""
    import datetime as dt

    import sqlalchemy as sa

    from admitone.core.db import Database
    from admitone.events import service
    from admitone.events.seatmap_io import SeatMapError, parse_seatmap
    from admitone.organizers.models import organizers

    settings = load_settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        reading = progress.add_task("reading", total=None)
        try:
            venue = parse_seatmap(
                path, name, lambda done, total: progress.update(reading, completed=done, total=total)
            )
        except SeatMapError as exc:
            progress.stop()
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        writing = progress.add_task("writing", total=None)

        async def _store() -> tuple[int, int]:
            db = Database(settings)
            try:
                async with db.write() as conn:
                    exists = (
                        await conn.execute(sa.select(organizers.c.id).where(organizers.c.id == organizer))
                    ).first()
                    if exists is None:
                        raise LookupError(
                            f"No organizer {organizer}; create one with `admitone organizer create`."
                        )
                    out = await service.create_venue(
                        conn,
                        organizer,
                        venue,
                        dt.datetime.now(dt.UTC),
                        lambda done, total: progress.update(writing, completed=done, total=total),
                    )
                    return out.id, out.seat_count
            finally:
                await db.dispose()

        try:
            venue_id, seat_count = asyncio.run(_store())
        except LookupError as exc:
            progress.stop()
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
    console.print(f"venue {venue_id} '{venue.name}': {seat_count} seats in {len(venue.sections)} sections")


@app.command("asyncapi")
def asyncapi_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Prints the AsyncAPI 3.0 document of the domain-event topic (docs/asyncapi.json)."""
    from admitone.outbox.asyncapi import render

    text = render()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"AsyncAPI document written to {output}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
