"""API shapes of organizers and their keys."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class Caller:
    """The organizer an API key belongs to, and what the key may do."""

    organizer_id: int
    organizer_name: str
    key_id: int
    scopes: frozenset[str]


class OrganizerOut(BaseModel):
    id: int = Field(description="The organizer's id.", examples=[3])
    name: str = Field(description="The organizer's name.", examples=["Spring Tour Productions"])
    scopes: list[str] = Field(
        description="What the API key may do: `read` and, to change data, `write`.",
        examples=[["read", "write"]],
    )


class CreatedKey(BaseModel):
    organizer_id: int
    key_id: int
    api_key: str
    scopes: list[str]
    created_at: dt.datetime
