"""How the memory routes refuse a request: ``{"detail": "<what to fix>"}``, and how they document it.

FastAPI's own 422 body lists every validation error as an object; a client of these routes
gets, like for every other refusal, one sentence naming the parameter or field and the rule
it broke.
"""

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse

from deployment.limits import LimitError

_WHY = {
    401: "Missing, malformed, expired or otherwise invalid bearer token.",
    404: "No such memory or failed batch of yours.",
    409: "The failed batch is still retried automatically.",
    413: "The memory or profile is over its size limit.",
    422: "A parameter or the body is invalid or over a bound; `detail` says which.",
}
_PLACES = {"query": "query parameter", "path": "path parameter", "body": "body field"}
# A parameter's value is repeated in the message up to this length (a long one is a bound it broke).
_MAX_ECHO = 40
NOT_A_JSON_OBJECT = "The body must be a JSON object, sent as Content-Type: application/json."


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of refusals with ``codes``."""
    return {code: {"model": Problem, "description": _WHY[code]} for code in codes}


def what_to_fix(error: Mapping[str, Any]) -> str:
    """One sentence for one of FastAPI's validation errors."""
    source, *path = error["loc"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "json_invalid":
        return f"The body is not JSON ({error.get('ctx', {}).get('error', message)}); it must be a JSON object."
    if source == "body" and not path and error["type"] != "value_error":
        return NOT_A_JSON_OBJECT
    if not path:
        return f"{message}."
    name = ".".join(str(part) for part in path)
    got = repr(error.get("input"))
    got = f", got {got}" if source in ("query", "path") and len(got) <= _MAX_ECHO else ""
    return f"Invalid {_PLACES.get(source, source)} `{name}`: {message}{got}."


async def validation_problem(request: Request, exc: Exception) -> JSONResponse:
    """422 with the first validation error, as one sentence."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": what_to_fix(exc.errors()[0])}, status_code=422)


async def limit_problem(request: Request, exc: Exception) -> JSONResponse:
    """A bound of ``deployment.limits`` the request is over, with its status (413 or 422)."""
    assert isinstance(exc, LimitError)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
