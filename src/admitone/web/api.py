"""HTTP of the buyer web app: its pages, its static files, and each ticket's QR code.

The pages are static HTML shells; plain ES modules in ``static/js`` read the public API and the live
WebSocket. Nothing here is rendered on the server, so the pages need no template engine and no build.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from admitone.checkin.tokens import sign_ticket
from admitone.core.deps import StateDep
from admitone.core.errors import Gone, NotFound, problems
from admitone.core.params import IdPath, TokenPath
from admitone.orders import repository as orders_repo
from admitone.orders import service as orders_service
from admitone.web.qr import ticket_svg

STATIC_DIR = Path(__file__).parent / "static"

# The pages load only their own scripts, styles and images, and talk only to this server.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter()


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/", name="page_events", include_in_schema=False)
async def page_events() -> FileResponse:
    return _page("index.html")


@router.get("/events/{event_id}", name="page_event", include_in_schema=False)
async def page_event(event_id: IdPath) -> FileResponse:
    return _page("event.html")


@router.get("/orders/{order_id}", name="page_order", include_in_schema=False)
async def page_order(order_id: TokenPath) -> FileResponse:
    return _page("order.html")


@router.get("/organizer/checkin", name="page_checkin", include_in_schema=False)
async def page_checkin() -> FileResponse:
    """The door staff's check-in page; it signs in with an organizer API key kept in session storage."""
    return _page("checkin.html")


@router.get(
    "/api/v1/orders/{order_id}/tickets/{ticket_id}/qr.svg",
    name="get_ticket_qr",
    tags=["Orders"],
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "The ticket code as an SVG QR code."},
        **problems(403, 404, 410),
    },
)
async def get_ticket_qr(
    state: StateDep,
    order_id: TokenPath,
    ticket_id: IdPath,
    header_token: Annotated[
        str | None, Header(alias="X-Order-Token", max_length=100, description="The order's access token.")
    ] = None,
    token: Annotated[
        str | None,
        Query(
            max_length=100,
            description="The order's access token, for an `<img src>` that cannot send headers. "
            "The header wins when both are given.",
        ),
    ] = None,
) -> Response:
    """A ticket's signed payload (`qr_payload` of the order's tickets) as a QR code in SVG.

    Authenticate with the order's access token in the `X-Order-Token` header, or as the `token` query
    parameter so that an `<img>` element can load it (the buyer's order page does this). The SVG has a
    `viewBox` and no fixed size: it scales to whatever size it is shown at. A void (refunded) ticket
    answers 410.
    """
    async with state.db.read() as conn:
        order = await orders_repo.get_order(conn, order_id)
        if order is None:
            raise NotFound(f"No order {order_id}.")
        orders_service.check_token(order, header_token or token)
        ticket = next((t for t in await orders_repo.tickets_of(conn, order_id) if t.id == ticket_id), None)
    if ticket is None:
        raise NotFound(f"Order {order_id} has no ticket {ticket_id}.")
    if ticket.status != "valid":
        raise Gone(f"Ticket {ticket_id} is {ticket.status}; it no longer admits anyone.")
    payload = sign_ticket(state.ticket_key, order.event_id, ticket.id, ticket.code)
    svg = await asyncio.to_thread(ticket_svg, payload, f"Ticket {ticket_id}")
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


class _Static(StaticFiles):
    """Static files that browsers revalidate (by ETag) on every use, so a new version shows at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_files() -> StaticFiles:
    """The app's scripts, styles and images, to mount at ``/static``."""
    return _Static(directory=STATIC_DIR)
