"""One hierarchy of domain errors, rendered once as RFC 9457 ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://admitone.dev/problems/"


class DomainError(Exception):
    """Base of every error a service may raise. Services never raise HTTP exceptions."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class SoldOut(Conflict):
    slug, title = "sold-out", "Sold out"


class SeatsTaken(Conflict):
    slug, title = "seats-taken", "Seats already taken"


class QuotaExceeded(Conflict):
    slug, title = "quota-exceeded", "Not enough tickets left"


class Gone(DomainError):
    status, slug, title = 410, "gone", "Gone"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class InvalidRequest(DomainError):
    """Input that passes the schema but breaks a business rule."""

    status, slug, title = 422, "invalid-request", "Invalid request"


class IdempotencyMismatch(InvalidRequest):
    slug, title = "idempotency-key-reused", "Idempotency key reused with another request"


class TooManyRequests(DomainError):
    """Sent too often; ``retry_after`` (seconds) says when to try again."""

    status, slug, title = 429, "too-many-requests", "Too many requests"


class Unavailable(DomainError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def problem(
    status: int, slug: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def internal_error(method: str, path: str, exc: BaseException) -> JSONResponse:
    """The 500 for an error nobody expected, logged with its traceback."""
    log.exception("unhandled error on %s %s", method, path, exc_info=exc)
    return problem(
        500,
        "internal-error",
        "Internal server error",
        "Something failed on our side; the request had no effect unless its response says so.",
        path,
    )


def _json_safe(errors: Any) -> Any:
    """Pydantic error details may hold exceptions or bytes in ``ctx``/``input``; keep them printable."""
    if isinstance(errors, dict):
        return {k: _json_safe(v) for k, v in errors.items()}
    if isinstance(errors, list | tuple):
        return [_json_safe(v) for v in errors]
    if errors is None or isinstance(errors, str | int | float | bool):
        return errors
    return str(errors)


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem(exc.status, exc.slug, exc.title, exc.detail, request.url.path, **exc.extra)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {k: v for k, v in err.items() if k in ("loc", "msg", "type", "ctx")} for err in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first.get("loc", []))
        return problem(
            422,
            "validation-error",
            "Request validation failed",
            f"{where}: {first.get('msg')}" if where else str(first.get("msg")),
            request.url.path,
            errors=_json_safe(errors),
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not found", 405: "Method not allowed", 400: "Bad request", 413: "Payload too large"}
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}; see /docs for the API."
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "Error").lower().replace(" ", "-"),
            titles.get(exc.status_code, "Error"),
            detail,
            request.url.path,
        )

    async def data_error(request: Request, exc: Exception) -> JSONResponse:
        # Last line of defence: the schema should have refused such input already.
        # asyncpg's data exceptions (SQLSTATE class 22: NUL in text, numbers out of range) reach us as a
        # plain DBAPIError rather than DataError, so they are recognised by their SQLSTATE.
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        if not isinstance(exc, DataError) and not (isinstance(sqlstate, str) and sqlstate.startswith("22")):
            return await unexpected(request, exc)
        log.warning("database refused a value on %s: %s", request.url.path, exc)
        return problem(
            422,
            "invalid-value",
            "Invalid value",
            "A value is out of the range this server stores.",
            request.url.path,
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request.method, request.url.path, exc)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, data_error)
    app.add_exception_handler(Exception, unexpected)
    document_problems(app)


def document_problems(app: FastAPI) -> None:
    """Makes the OpenAPI document say what the handlers above send: every error response is
    ``application/problem+json`` with the ``Problem`` schema (FastAPI would list its own validation error
    shape under ``application/json``, which this server never sends)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in document.get("paths", {}).values():
            for operation in item.values():
                for code, response in operation.get("responses", {}).items():
                    if code[:1] in ("4", "5") or code == "default":
                        response["content"] = dict(problem_content)
                        if code == "422":
                            response["description"] = _DESCRIPTIONS[422]
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


class Problem(BaseModel):
    """RFC 9457 problem details; extra members (``errors``, ``seats``, ...) depend on the problem."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_BASE + "seats-taken",
                    "title": "Seats already taken",
                    "status": 409,
                    "detail": "Seats Stalls A-3, Stalls A-4 are already taken; pick others.",
                    "instance": "/api/v1/events/42/holds",
                }
            ]
        },
    )
    type: str = Field(
        description="URI naming the kind of problem; the same kind always has the same URI, so clients "
        "branch on it (for example `.../sold-out`, `.../seats-taken`, `.../validation-error`).",
        examples=[PROBLEM_BASE + "seats-taken"],
    )
    title: str = Field(
        description="Short, human-readable summary of the kind of problem; does not change between "
        "occurrences.",
        examples=["Seats already taken"],
    )
    status: int = Field(description="The HTTP status code of the response.", examples=[409])
    detail: str = Field(
        description="Human-readable explanation of this occurrence, fit to show to the user.",
        examples=["Seats Stalls A-3, Stalls A-4 are already taken; pick others."],
    )
    instance: str | None = Field(
        None,
        description="Path of the request that had the problem.",
        examples=["/api/v1/events/42/holds"],
    )


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid API key",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict (sold out, seats taken, wrong state)",
    410: "Expired",
    413: "Body too large",
    422: "Invalid input",
    503: "Busy; retry",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems an operation may answer with."""
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {PROBLEM_JSON: {}},
        }
        for code in codes
    }
