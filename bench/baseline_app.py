"""The baseline for bench/holds.py: the cheapest useful FastAPI JSON endpoint.

It parses and validates a body shaped like a hold request with pydantic and answers a small pydantic
model, with no database. bench/holds.py serves it with the same uvicorn settings as ``admitone serve``
(uvloop, httptools, access log off, same worker count), so the ratio holds/baseline shows what the hold
path costs on top of HTTP + FastAPI + JSON on this machine.

    python -m uvicorn baseline_app:app --app-dir bench --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel, Field


class TicketRequest(BaseModel):
    ticket_type_id: Annotated[int, Field(ge=1)]
    quantity: Annotated[int, Field(ge=1, le=1000)]


class EchoIn(BaseModel):
    tickets: list[TicketRequest] = Field(max_length=20)


class EchoOut(BaseModel):
    ok: bool
    tickets: int


app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/echo", response_model=EchoOut)
async def echo(body: EchoIn) -> EchoOut:
    return EchoOut(ok=True, tickets=sum(t.quantity for t in body.tickets))


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
