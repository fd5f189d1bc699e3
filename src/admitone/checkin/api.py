"""HTTP of check-in at the door: scan a ticket, and count who is in."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends

from admitone.checkin import service
from admitone.checkin.schemas import CheckinRequest, CheckinResult, CheckinSummary
from admitone.core.deps import StateDep
from admitone.core.errors import Forbidden, problems
from admitone.core.params import IdPath
from admitone.organizers.auth import CurrentCaller
from admitone.organizers.schemas import Caller
from admitone.outbox.repository import EventStream

router = APIRouter(prefix="/organizer", tags=["Organizer: check-in"], responses=problems(401, 403))


async def door_caller(caller: CurrentCaller) -> Caller:
    if not caller.scopes & {"checkin", "write"}:
        raise Forbidden("Checking tickets in needs an API key with the 'checkin' (or 'write') scope.")
    return caller


DoorCaller = Annotated[Caller, Depends(door_caller)]


@router.post(
    "/events/{event_id}/checkins",
    name="check_in_ticket",
    response_model=CheckinResult,
    responses=problems(404),
)
async def check_in_ticket(
    state: StateDep, caller: DoorCaller, event_id: IdPath, body: CheckinRequest
) -> CheckinResult:
    """Scans a ticket at the door of an event: admits it once, or says why not.

    `payload` is what the scanner read from the ticket's QR code, or the ticket code typed by hand. The
    answer is always 200 with a `result`: `valid` (admit), `already_used` (with when and by which
    scanner), `invalid` (forged, unknown or refunded, with a `reason`) or `wrong_event`. The QR
    signature is checked before anything else, so a forged payload is refused without a database read.
    Of concurrent scans of one ticket exactly one is `valid`. The same `scanner` repeating a scan within
    `ADMITONE_CHECKIN_RETRY_SECONDS` gets `valid` again with the original time (`repeated: true`).
    """
    scan = service.read_payload(state.ticket_key, body.payload)
    if isinstance(scan, CheckinResult):
        return scan
    now = state.clock.now()
    window = dt.timedelta(seconds=state.settings.checkin_retry_seconds)
    async with state.db.read() as conn:
        found = await service.inspect(conn, caller.organizer_id, event_id, scan, body.scanner, now, window)
    if isinstance(found, CheckinResult):
        return found
    async with state.db.write() as conn:
        stream = await EventStream.lock(conn, event_id)
        return await service.admit(conn, stream, found, body.scanner, now, window)


@router.get(
    "/events/{event_id}/checkins/summary",
    name="get_checkin_summary",
    response_model=CheckinSummary,
    responses=problems(404),
)
async def get_checkin_summary(state: StateDep, caller: CurrentCaller, event_id: IdPath) -> CheckinSummary:
    """How many of the event's valid tickets have been admitted so far."""
    async with state.db.read() as conn:
        return await service.summary(conn, caller.organizer_id, event_id)
