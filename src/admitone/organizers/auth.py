"""Organizer authentication, attached where organizer routers are included."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from admitone.core.deps import StateDep
from admitone.core.errors import Forbidden
from admitone.organizers import service
from admitone.organizers.schemas import Caller

bearer = HTTPBearer(auto_error=False, description="An organizer API key from `admitone organizer create`.")


async def current_caller(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    async with state.db.read() as conn:
        return await service.authenticate(conn, credentials.credentials if credentials else None)


async def writer(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    if "write" not in caller.scopes:
        raise Forbidden("This API key may only read; changing data needs a key with the 'write' scope.")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
WriteCaller = Annotated[Caller, Depends(writer)]
