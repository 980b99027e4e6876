"""Every error the API gives is RFC 9457 ``application/problem+json`` with a stable ``code``."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairslot.domain.errors import FairslotError, TooManyRequests
from fairslot.logsafe import describe
from fairslot.storage.errors import is_unavailable

__all__ = ["PROBLEM_RESPONSES", "Problem", "install_problem_handlers", "problem_response"]

log = logging.getLogger("fairslot.web")
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


def _problem_content(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_content("Bad request"),
    401: _problem_content("Authentication required"),
    403: _problem_content("Forbidden"),
    404: _problem_content("Not found"),
    409: _problem_content("Conflict with the current state"),
    422: _problem_content("Invalid input"),
    429: _problem_content("Too many requests"),
    503: _problem_content("Temporarily unavailable"),
}


def problem_response(status: int, code: str, title: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://fairslot.org/problems/{code}", "title": title,
                            "status": status, "detail": detail, "code": code}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FairslotError)
    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, TooManyRequests):
        headers.setdefault("Retry-After", str(exc.retry_after))
    return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=headers or None,
                            **_jsonable(exc.extra))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] or first["loc"]) or "request"
    return problem_response(422, "validation_error", "Invalid input",
                            f"{where}: {first['msg']}", errors=errors)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
             403: "forbidden", 400: "bad_request", 413: "too_large"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return problem_response(exc.status_code, code, code.replace("_", " ").capitalize(),
                            str(exc.detail), headers=dict(exc.headers or {}) or None)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    # Outside a unit of work's statements (opening its connection, the access log) a
    # database that went away is still a clean 503: the request changed nothing.
    if is_unavailable(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    describe(exc))
        return problem_response(503, "database_unavailable", "Temporarily unavailable",
                                "the database is unavailable for a moment; nothing was "
                                "changed, please try again", headers={"Retry-After": "2"})
    return await _on_unexpected(request, exc)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Log the type and where, never the request body nor the exception's message: both may
    # hold PII (a database error's message carries the statement's parameters).
    log.error("unexpected %s on %s %s", describe(exc), request.method, request.url.path)
    return problem_response(500, "internal_error", "Internal error",
                            "something went wrong on our side; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FairslotError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(sa.exc.DBAPIError, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
