"""HTTP for organizers: the order-confirmation e-mails of an event, and resending one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from admitone.core.deps import StateDep
from admitone.core.errors import problems
from admitone.core.params import IdPath
from admitone.mail import service
from admitone.mail.schemas import EmailList, EmailOut, EmailStatus
from admitone.organizers.auth import CurrentCaller, WriteCaller

organizer = APIRouter(prefix="/organizer", tags=["Organizer: e-mails"], responses=problems(401, 403))


@organizer.get(
    "/events/{event_id}/emails", name="list_event_emails", response_model=EmailList, responses=problems(404)
)
async def list_event_emails(
    state: StateDep,
    caller: CurrentCaller,
    event_id: IdPath,
    status: Annotated[EmailStatus | None, Query(description="Only e-mails in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> EmailList:
    """The event's order confirmations, newest first; `?status=failed` lists the ones to look at."""
    async with state.db.read() as conn:
        emails = await service.list_emails(conn, caller.organizer_id, event_id, status, limit, offset)
    return EmailList(delivery="on" if state.settings.smtp_host else "off", emails=emails)


@organizer.post(
    "/events/{event_id}/emails/{email_id}/resend",
    name="resend_email",
    response_model=EmailOut,
    responses=problems(404, 409),
)
async def resend_email(state: StateDep, caller: WriteCaller, event_id: IdPath, email_id: IdPath) -> EmailOut:
    """Sends a failed (or still waiting) e-mail again now, with a fresh set of attempts.

    An e-mail that was sent is not sent again (409): its Message-ID is stable per order, so mail systems
    would discard the copy anyway.
    """
    async with state.db.write() as conn:
        email = await service.resend(conn, caller.organizer_id, event_id, email_id, state.clock.now())
    if state.mail is not None:
        state.mail.notify()
    return email
