"""Path parameters shared by the routers."""

from typing import Annotated

from fastapi import Path

from admitone.core.schemas import INT32_MAX

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
TokenPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
