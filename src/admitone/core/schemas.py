"""Field types shared by every API schema: bounded, printable, storable in both databases."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

INT32_MAX = 2**31 - 1

# No control characters (PostgreSQL refuses NUL in text; nobody means a tab in a name).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE)
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=PRINTABLE)
]
Description = Annotated[str, StringConstraints(max_length=5000, pattern=r"^[^\x00]*$")]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Money = Annotated[int, Field(ge=0, le=INT32_MAX, description="Amount in minor units (cents).")]
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]


class Schema(BaseModel):
    """Base of request bodies: unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")
