"""HTTP for the calling organizer."""

from __future__ import annotations

from fastapi import APIRouter

from admitone.core.errors import problems
from admitone.organizers.auth import CurrentCaller
from admitone.organizers.schemas import OrganizerOut

router = APIRouter(prefix="/organizer", tags=["Organizer"])


@router.get("/me", name="get_current_organizer", response_model=OrganizerOut, responses=problems(401))
async def get_current_organizer(caller: CurrentCaller) -> OrganizerOut:
    """The organizer the API key belongs to, and the key's scopes."""
    return OrganizerOut(id=caller.organizer_id, name=caller.organizer_name, scopes=sorted(caller.scopes))
