"""Errors as RFC 9457 problem details (application/problem+json), for every route of the app."""
from __future__ import annotations

import logging

import orjson
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cim_core.errors import CimError, DatabaseError, InputError, NotFoundError

PROBLEM = "application/problem+json"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          500: "Internal Server Error", 503: "Service Unavailable"}
log = logging.getLogger("cim.api")


def problem_response(request: Request, status: int, detail: str, title: str | None = None,
                     headers: dict | None = None) -> Response:
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status,
            "detail": detail, "instance": request.url.path}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def _cim_error(request: Request, exc: CimError) -> Response:
    if isinstance(exc, DatabaseError):
        # its message names hosts, ports and log files: for the server's log, not for callers
        log.error("database unavailable on %s: %s", request.url.path, exc)
        return problem_response(request, 503, "the database is not available; try again shortly",
                                headers={"Retry-After": "5"})
    status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, InputError) else 500
    return problem_response(request, status, str(exc))


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if isinstance(exc.detail, dict):
        return problem_response(request, exc.status_code, exc.detail.get("detail", ""), exc.detail.get("title"),
                                exc.headers)
    return problem_response(request, exc.status_code, str(exc.detail), headers=exc.headers)


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return problem_response(request, 400, "; ".join(parts) or "invalid request")


def _database_error(request: Request, exc: sa.exc.DBAPIError) -> Response:
    # Values reach SQL only as parameters, but a value PostgreSQL cannot interpret (SQLSTATE
    # class 22, data exception) is still the caller's mistake, not the server's.
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state.startswith("22") or isinstance(exc, sa.exc.DataError):  # also NUL bytes, refused by the driver
        return problem_response(request, 400, "a value in the request cannot be used: "
                                + str(exc.orig).strip().splitlines()[0])
    log.error("database error on %s: %s", request.url.path, str(exc.orig or exc).strip().splitlines()[0])
    if isinstance(exc, sa.exc.OperationalError):  # the server is down or restarting
        return problem_response(request, 503, "the database is not available; try again shortly",
                                headers={"Retry-After": "5"})
    return problem_response(request, 500, "the database failed to answer this request")


def install(app: FastAPI) -> None:
    """Problem-details handlers for the platform's errors, HTTP errors and invalid parameters."""
    app.add_exception_handler(CimError, _cim_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa.exc.DBAPIError, _database_error)
