"""RFC 9457 problem details: every error has a stable machine `code` and a human `detail`.

Clients branch on `code` (also encoded in `type`), never on `detail` or `title`, so the wording
of a detail can improve without breaking anyone.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from media_pipeline.core.storage import StorageError
from media_pipeline.platform.job_kinds import RequestConfig

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:media-pipeline:problem:"

logger = logging.getLogger("api")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ApiProblem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def not_found(what: str, identifier: object) -> ApiProblem:
    return ApiProblem(404, "not_found", f"there is no {what} with id {identifier}")


def field_problem(field: str, message: str, *, location: str = "body", code: str = "validation_error") -> ApiProblem:
    """A 422 naming one request field, shaped like the validation handler's answers."""
    return ApiProblem(
        422,
        code,
        f"{field}: {message}",
        errors=[{"field": field, "loc": [location, field], "message": message, "type": code}],
    )


def reject_problems(request: Any, location: tuple[str, ...] = ("body",)) -> None:
    """A 422 naming each field a request's `problems()` finds (a `RequestConfig`: the value checks
    its step makes too), raised before anything is looked up or created. Any other request has
    been checked whole by pydantic already."""
    if not isinstance(request, RequestConfig):
        return
    problems = request.problems()
    if problems:
        raise ApiProblem(
            422,
            "validation_error",
            "invalid request: " + "; ".join(f"{field}: {message}" for field, message in problems),
            errors=[
                {"field": field, "loc": [*location, field], "message": message, "type": "value_error"}
                for field, message in problems
            ],
        )


def problem_body(status: int, code: str, detail: str, instance: str | None = None, **extensions: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    return ProblemResponse(problem_body(status, code, detail, instance, **extensions), status, headers=headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# Codes for the statuses Starlette itself raises (unknown route, wrong method, ...).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "frame") -> "frame"; ("query", "limit") -> "limit"; ("body",) -> "body"
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        errors.append(
            {
                "field": _field_name(loc),
                "loc": [str(p) if not isinstance(p, int) else p for p in loc],
                # pydantic prefixes a validator's own sentence with its exception type: not for users.
                "message": str(error.get("msg", "invalid value")).removeprefix("Value error, "),
                "type": str(error.get("type", "value_error")),
            }
        )
    return errors


async def _api_problem_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        exc.status, exc.code, exc.detail, instance=request.url.path, headers=exc.headers, **exc.extensions
    )


async def _validation_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    # One sentence naming every offending field, so a human reading only `detail` can act on it.
    seen: dict[str, str] = {}
    for error in errors:
        seen.setdefault(error["field"], error["message"])
    detail = "invalid request: " + "; ".join(f"{field}: {message}" for field, message in seen.items())
    return problem_response(422, "validation_error", detail, instance=request.url.path, errors=errors)


async def _http_handler(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _title(exc.status_code)
    if exc.status_code == 404:
        detail = f"no route matches {request.method} {request.url.path}"
    return problem_response(exc.status_code, code, detail, instance=request.url.path, headers=dict(exc.headers or {}))


async def _unhandled_handler(request: Request, exc: Exception) -> ProblemResponse:
    # The exception (with its traceback) goes to the server log only; clients get a stable,
    # generic problem they can quote when reporting it.
    logger.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "internal_error",
        "the server failed to handle this request; it was logged, and retrying may help",
        instance=request.url.path,
    )


async def _storage_handler(request: Request, exc: Exception) -> ProblemResponse:
    # The artifact store (the S3 bucket) is unreachable or refuses: its sentence names the setting.
    return problem_response(503, "storage_unavailable", str(exc), instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiProblem, _api_problem_handler)
    app.add_exception_handler(StorageError, _storage_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unhandled_handler)


_DESCRIPTIONS = {
    400: "The body could not be parsed at all (`bad_request`): not JSON, not UTF-8, broken multipart.",
    401: "Missing or wrong API token (`unauthorized`).",
    404: "Unknown id (`not_found`).",
    409: "Conflicts with the current state or with an earlier use of the Idempotency-Key.",
    413: "The request body is larger than MEDIA_PIPELINE_MAX_UPLOAD_BYTES (`payload_too_large`).",
    416: "The Range cannot be satisfied for this file (`range_not_satisfiable`).",
    422: "Invalid request; `errors[].field` names each offending field (`validation_error`).",
    500: "Unexpected server error (`internal_error`); details are in the server log only.",
    502: "Dagster refused to launch the run (`dagster_rejected`); nothing was created.",
    503: "A dependency (database, artifact store or Dagster) is unavailable.",
}


def problem_responses(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem answers, with route-specific `descriptions`."""
    from api.schemas import Problem  # schemas import nothing from here; keep the dependency one-way

    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = (descriptions or {}).get(status) or _DESCRIPTIONS.get(status) or _title(status)
        responses[status] = {"model": Problem, "description": description}
    return responses


def rewrite_problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Document every error response as `application/problem+json` with the Problem schema.

    FastAPI documents `model=` responses under `application/json` and its own 422 under
    HTTPValidationError; neither is what the handlers above send.
    """
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
