"""Memory management for end users: the caller's own memories and profile over HTTP.

Served by the deployment itself (``langgraph.json``: ``"http": {"app": "deployment.routes:app",
"enable_custom_route_auth": true}``), so the routes sit behind the same auth as the rest of
the API. Every route is under ``/me``: there is no user parameter to tamper with, the user is
the token's. With auth off (local development) they act for the local user.

The routes use the server's own store, the one its ``/store`` API and the graphs use, so they
see exactly what the graphs read and write, whichever backend the deployment configures.
They get it from ``langgraph_api.store.get_store()`` rather than ``langgraph.config.get_store()``:
in langgraph-api 0.16.7 the latter, in a custom route, returns the in-memory store as it was
before the server configured it (its middleware captures the store on the lifespan event),
so it would see no memories at all.

The OpenAPI description of each route is generated from the models below and attached to
the endpoint's docstring, which is where the server's schema generator (Starlette's) reads
it; the server merges it into ``/openapi.json``.
"""

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from langgraph.store.base import BaseStore, Item
from langgraph_api.store import get_store
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from deployment import limits
from deployment.auth import SETTINGS, caller_user_id
from deployment.gate import AuthGate
from deployment.loopback_errors import LoopbackErrors
from deployment.tokens import AuthSettings, TokenError
from memory.history import Action, Provenance, forget, history, record_change
from memory.records import (
    MEMORY_FIELD,
    PROFILE_KEY,
    UserProfile,
    episode_namespace,
    failure_namespace,
    history_namespace,
    instructions_namespace,
    memory_namespace,
    memory_text,
    profile_namespace,
    stated_at,
)
from memory.search import search_memories
from memory_graph import failures

MAX_PROFILE_TEXT_CHARS = 500
MAX_PROFILE_LIST_ITEMS = 50
MAX_PROFILE_FIELDS = 50
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
DEFAULT_PAGE_SIZE = 20
_SCAN_PAGE = 100
_TAG = "Memories"

Endpoint = Callable[[Request], Awaitable[Response]]
E = TypeVar("E", bound=Endpoint)


class MemoryOut(BaseModel):
    """One memory, as shown to its owner."""

    id: str = Field(description="The memory's id (its key in the store).")
    content: str = Field(description="The memory's text.")
    stated_at: datetime | None = Field(
        default=None,
        description="When it was said (its source message's time), if known; created_at is when it was saved.",
    )
    created_at: datetime
    updated_at: datetime


class MemoryPage(BaseModel):
    """A page of the caller's memories."""

    items: list[MemoryOut]
    limit: int
    offset: int


class MemoryEdit(BaseModel):
    """The new text of a memory."""

    content: str = Field(
        min_length=1, max_length=limits.MAX_MEMORY_CHARS, pattern=r"\S", description="The memory's new text."
    )


class Deleted(BaseModel):
    """How many memories were deleted."""

    deleted: int


class ProfileOut(BaseModel):
    """The caller's profile document; ``profile`` is null until something is known."""

    profile: dict[str, Any] | None
    updated_at: datetime | None


class StoredRecord(BaseModel):
    """Any other record kept for the caller (e.g. extraction cursors), as stored."""

    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class MemoryHistory(BaseModel):
    """Every recorded change to one memory, oldest first; the first entry is its provenance."""

    items: list[dict[str, Any]] = Field(
        description="History entries as stored: action, before, after, at, source, thread_id, message_ids."
    )


class RecordPage(BaseModel):
    """The caller's episodes, learned instructions and records of custom memory types."""

    items: list[StoredRecord]


class MemoryFailureOut(BaseModel):
    """Messages of a conversation the memory service failed to turn into memories."""

    id: str = Field(description="The failure's id, to retry it.")
    chat_thread_id: str = Field(description="The conversation.")
    first_message_id: str | None = Field(description="First message of the failed batch.")
    last_message_id: str | None = Field(description="Last message of the failed batch.")
    start: int = Field(description="Position of the first message in the conversation.")
    end: int = Field(description="Position just after the last message.")
    error: str = Field(description="Why the last attempt failed.")
    attempts: int = Field(description="Attempts made so far.")
    first_failed_at: datetime
    last_failed_at: datetime
    status: Literal["retrying", "set_aside", "retry_requested"] = Field(
        description="'retrying': tried again automatically after `retry_at`; 'set_aside': given up on, "
        "later messages went ahead (retry it on demand); 'retry_requested': being processed again "
        "by a memory run of the conversation."
    )
    retry_at: datetime | None


class MemoryFailurePage(BaseModel):
    """The caller's failed batches, oldest failure first."""

    items: list[MemoryFailureOut]


class Export(BaseModel):
    """Everything the service keeps about the caller."""

    user_id: str
    exported_at: datetime
    profile: dict[str, Any] | None
    memories: list[MemoryOut]
    history: list[dict[str, Any]] = Field(description="Every recorded change to your memories, oldest first.")
    memory_failures: list[MemoryFailureOut] = Field(
        default_factory=list, description="Messages the memory service failed to process (see /me/memory-failures)."
    )
    other_records: list[StoredRecord]


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


class ApiError(Exception):
    """Ends a request with ``status_code`` and a ``{"detail": ...}`` body."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


# --- OpenAPI ------------------------------------------------------------------------------


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with ``$defs`` inlined: route docstrings cannot add components."""
    raw = model.model_json_schema(mode="serialization")
    defs = raw.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(raw)
    return result


def _bounded_schema(node: Any) -> Any:
    """Add the profile's text and list bounds to a JSON schema, wherever strings and arrays are."""
    if isinstance(node, list):
        return [_bounded_schema(value) for value in node]
    if not isinstance(node, dict):
        return node
    bounded = {key: _bounded_schema(value) for key, value in node.items()}
    if bounded.get("type") == "string":
        bounded["maxLength"] = MAX_PROFILE_TEXT_CHARS
    if bounded.get("type") == "array":
        bounded["maxItems"] = MAX_PROFILE_LIST_ITEMS
    return bounded


_SCALAR_SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "maxLength": MAX_PROFILE_TEXT_CHARS},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
]


def _profile_patch_schema() -> dict[str, Any]:
    """The default profile's fields, plus any other flat field (an assistant may configure its own schema)."""
    schema = _schema(UserProfile)
    return {
        "type": "object",
        "description": "Profile fields to set; fields left out keep their value, null clears one. "
        "The default profile's fields are checked against their types; fields of a configured "
        "profile schema are accepted as text, numbers, booleans or lists of those.",
        "properties": _bounded_schema(schema.get("properties", {})),
        "maxProperties": MAX_PROFILE_FIELDS,
        "propertyNames": {"pattern": _FIELD_NAME.pattern},
        "additionalProperties": {
            "anyOf": [
                *_SCALAR_SCHEMAS,
                {"type": "array", "maxItems": MAX_PROFILE_LIST_ITEMS, "items": {"anyOf": _SCALAR_SCHEMAS}},
            ]
        },
    }


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": dict(schema)}}}


_MEMORY_ID = {
    "name": "memory_id",
    "in": "path",
    "required": True,
    "description": "The memory's id, as listed.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.MAX_KEY_CHARS,
        "pattern": "^[^\\x00-\\x1f\\x7f]+$",
    },
}
_FAILURE_ID = {
    "name": "failure_id",
    "in": "path",
    "required": True,
    "description": "The failure's id, as listed.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.MAX_KEY_CHARS,
        "pattern": "^[^\\x00-\\x1f\\x7f]+$",
    },
}
_PROBLEMS = {
    401: "Missing, malformed, expired or otherwise invalid bearer token.",
    404: "No such memory.",
    409: "The failed batch is still retried automatically.",
    413: "The memory or profile is over its size limit.",
    422: "A parameter or the body is invalid or over a bound; `detail` says which.",
}


def _operation(
    summary: str,
    status: int,
    response: type[BaseModel] | None,
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: Mapping[str, Any] | None = None,
    problems: tuple[int, ...] = (401, 422),
) -> Callable[[E], E]:
    """Attach the route's OpenAPI operation to its docstring, as Starlette's schema generator reads it."""

    def decorate(endpoint: E) -> E:
        responses: dict[str, Any] = {
            str(status): {"description": summary, **(_json(_schema(response)) if response else {})}
        }
        for code in problems:
            responses[str(code)] = {"description": _PROBLEMS[code], **_json(_schema(Problem))}
        operation: dict[str, Any] = {
            "summary": summary,
            "description": " ".join((endpoint.__doc__ or "").split()),
            "operationId": endpoint.__name__,
            "tags": [_TAG],
            "security": [{"BearerAuth": []}],
            "responses": responses,
        }
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = {"required": True, **_json(body)}
        endpoint.__doc__ = f"{endpoint.__doc__}\n---\n{yaml.safe_dump(operation, sort_keys=False)}"
        return endpoint

    return decorate


# --- Helpers ------------------------------------------------------------------------------


def _settings(request: Request) -> AuthSettings:
    settings: AuthSettings = getattr(request.app.state, "auth_settings", SETTINGS)
    return settings


def _user_id(request: Request, query_params: tuple[str, ...] = ()) -> str:
    """The caller; refuses query parameters the route does not take (e.g. a ``user_id``)."""
    try:
        user_id = caller_user_id(_settings(request), request.scope.get("user"))
    except TokenError as error:
        raise ApiError(401, str(error)) from None
    unknown = sorted(set(request.query_params) - set(query_params))
    if unknown:
        accepted = f"it accepts only {list(query_params)}" if query_params else "it takes none"
        raise ApiError(422, f"Unknown query parameters {unknown}: {accepted}. The user is always the token's.")
    return user_id


# Edits through these routes are the user's own: recorded in the history like any change.
# Deletions erase the history of what was deleted, which would otherwise keep its text.
_BY_USER = Provenance("user", None, [])


async def _store() -> BaseStore:
    return await get_store()


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(422, f"`{name}` must be an integer, got {raw!r}.") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (strict JSON: NaN and Infinity, which cannot be sent back, are refused)."""
    try:
        body = json.loads(await request.body(), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise ApiError(422, "The body must be a JSON object.")
    return body


def _memory_out(item: Item) -> MemoryOut:
    return MemoryOut(
        id=item.key,
        content=memory_text(item.value),
        stated_at=stated_at(item.value),
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _ok(model: BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code, headers=headers)


async def _all_items(store: BaseStore, namespace: tuple[str, ...]) -> list[Item]:
    """Every item under ``namespace`` (paged through, so no single call is unbounded)."""
    items: list[Item] = []
    while True:
        page = await store.asearch(namespace, limit=_SCAN_PAGE, offset=len(items))
        items.extend(page)
        if len(page) < _SCAN_PAGE:
            return items


async def _own_memory(store: BaseStore, user_id: str, memory_id: str) -> Item:
    try:
        limits.check_key(memory_id)
    except limits.LimitError as error:
        raise ApiError(error.status_code, str(error)) from None
    item = await store.aget(memory_namespace(user_id), memory_id)
    if item is None:
        raise ApiError(404, f"No memory has id {memory_id!r}.")
    return item


def _check_scalar(name: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_PROFILE_TEXT_CHARS:
        raise ApiError(422, f"Profile field {name!r} is over {MAX_PROFILE_TEXT_CHARS} characters.")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ApiError(422, f"Profile field {name!r} must be text, a number, a boolean or a list of those.")


def _profile_value(name: str, value: Any) -> Any:
    """The value to store for one patched field; null resets a default field and removes any other."""
    if not _FIELD_NAME.match(name):
        raise ApiError(422, f"Profile field name {name!r} must be an identifier of at most 64 characters.")
    field = UserProfile.model_fields.get(name)
    if value is None:
        return field.get_default(call_default_factory=True) if field is not None else None
    if isinstance(value, list):
        if len(value) > MAX_PROFILE_LIST_ITEMS:
            raise ApiError(422, f"Profile field {name!r} has over {MAX_PROFILE_LIST_ITEMS} entries.")
        for entry in value:
            _check_scalar(name, entry)
    else:
        _check_scalar(name, value)
    if field is None or field.annotation is None:
        return value
    adapter: TypeAdapter[Any] = TypeAdapter(field.annotation)
    try:
        return adapter.dump_python(adapter.validate_python(value), mode="json")
    except ValidationError as error:
        raise ApiError(422, f"Invalid profile field {name!r}: {error.errors()[0]['msg']}.") from None


# --- Routes -------------------------------------------------------------------------------


@_operation(
    "List your memories",
    200,
    MemoryPage,
    parameters=[
        {
            "name": "query",
            "in": "query",
            "description": "Rank against this text as recall does (meaning and words) instead of listing in "
            "store order (empty: list).",
            "schema": {"type": "string", "maxLength": limits.MAX_QUERY_CHARS},
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": limits.MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": limits.MAX_OFFSET}},
    ],
)
async def list_memories(request: Request) -> Response:
    """A page of the caller's memories, optionally ranked by meaning against a query."""
    user_id = _user_id(request, ("query", "limit", "offset"))
    try:
        limit, offset = limits.check_page(
            _int_param(request, "limit", DEFAULT_PAGE_SIZE), _int_param(request, "offset", 0)
        )
        query = limits.check_query(request.query_params.get("query")) or None
    except limits.LimitError as error:
        raise ApiError(error.status_code, str(error)) from None
    store = await _store()
    namespace = memory_namespace(user_id)
    if query:
        items = await search_memories(store, namespace, query, limit, offset=offset)
    else:
        items = await store.asearch(namespace, limit=limit, offset=offset)
    return _ok(MemoryPage(items=[_memory_out(item) for item in items], limit=limit, offset=offset))


@_operation("Delete all your memories", 200, Deleted, problems=(401, 422))
async def delete_all_memories(request: Request) -> Response:
    """Delete every memory of the caller (the profile is kept: delete it separately)."""
    user_id = _user_id(request)
    store = await _store()
    items = await _all_items(store, memory_namespace(user_id))
    for item in items:
        await store.adelete(item.namespace, item.key)
    await forget(store, user_id, memory_namespace(user_id))
    return _ok(Deleted(deleted=len(items)))


@_operation("Read one of your memories", 200, MemoryOut, parameters=[_MEMORY_ID], problems=(401, 404, 422))
async def get_memory(request: Request) -> Response:
    """One memory of the caller; another user's memory id is simply not found."""
    user_id = _user_id(request)
    store = await _store()
    return _ok(_memory_out(await _own_memory(store, user_id, request.path_params["memory_id"])))


@_operation(
    "Edit one of your memories",
    200,
    MemoryOut,
    parameters=[_MEMORY_ID],
    body=_schema(MemoryEdit),
    problems=(401, 404, 413, 422),
)
async def edit_memory(request: Request) -> Response:
    """Replace a memory's text, keeping any other fields stored with it; it is re-indexed for search."""
    user_id = _user_id(request)
    body = await _json_object(request)
    try:
        edit = MemoryEdit.model_validate(body)
        limits.check_memory_text(edit.content)
    except ValidationError as error:
        raise ApiError(422, f"Invalid memory edit: {error.errors()[0]['msg']} at {error.errors()[0]['loc']}.") from None
    except limits.LimitError as error:
        raise ApiError(error.status_code, str(error)) from None
    store = await _store()
    item = await _own_memory(store, user_id, request.path_params["memory_id"])
    value = {**item.value, MEMORY_FIELD: edit.content}
    await store.aput(item.namespace, item.key, value)
    await record_change(store, user_id, item.namespace, item.key, "update", item.value, value, _BY_USER)
    updated = await store.aget(item.namespace, item.key)
    assert updated is not None
    return _ok(_memory_out(updated))


@_operation("Delete one of your memories", 204, None, parameters=[_MEMORY_ID], problems=(401, 404, 422))
async def delete_memory(request: Request) -> Response:
    """Delete one memory of the caller."""
    user_id = _user_id(request)
    store = await _store()
    item = await _own_memory(store, user_id, request.path_params["memory_id"])
    await store.adelete(item.namespace, item.key)
    await forget(store, user_id, item.namespace, item.key)
    return Response(status_code=204)


@_operation("Read your profile", 200, ProfileOut, problems=(401, 422))
async def get_profile(request: Request) -> Response:
    """The profile document the service keeps about the caller."""
    user_id = _user_id(request)
    store = await _store()
    item = await store.aget(profile_namespace(user_id), PROFILE_KEY)
    return _ok(ProfileOut(profile=item.value if item else None, updated_at=item.updated_at if item else None))


@_operation("Edit your profile", 200, ProfileOut, body=_profile_patch_schema(), problems=(401, 413, 422))
async def edit_profile(request: Request) -> Response:
    """Set some profile fields; the others keep their value (null clears one)."""
    user_id = _user_id(request)
    patch = await _json_object(request)
    if len(patch) > MAX_PROFILE_FIELDS:
        raise ApiError(422, f"A profile edit sets at most {MAX_PROFILE_FIELDS} fields.")
    values = {name: _profile_value(name, value) for name, value in patch.items()}
    store = await _store()
    namespace = profile_namespace(user_id)
    current = await store.aget(namespace, PROFILE_KEY)
    # Fields not in the patch are kept as stored, including those of a configured profile schema.
    profile = {**(current.value if current else {}), **values}
    for name, value in values.items():
        if value is None and name not in UserProfile.model_fields:
            del profile[name]
    try:
        limits.check_value(namespace, profile)
    except limits.LimitError as error:
        raise ApiError(error.status_code, str(error)) from None
    await store.aput(namespace, PROFILE_KEY, profile, index=False)
    before = current.value if current else None
    action: Action = "update" if current else "create"
    await record_change(store, user_id, namespace, PROFILE_KEY, action, before, profile, _BY_USER)
    saved = await store.aget(namespace, PROFILE_KEY)
    return _ok(ProfileOut(profile=profile, updated_at=saved.updated_at if saved else None))


@_operation("Delete your profile", 204, None, problems=(401, 422))
async def delete_profile(request: Request) -> Response:
    """Forget the caller's profile (it is rebuilt from later conversations)."""
    user_id = _user_id(request)
    store = await _store()
    await store.adelete(profile_namespace(user_id), PROFILE_KEY)
    await forget(store, user_id, profile_namespace(user_id), PROFILE_KEY)
    return Response(status_code=204)


@_operation("Export everything kept about you", 200, Export, problems=(401, 422))
async def export(request: Request) -> Response:
    """The caller's memories, profile and every other record under their namespaces, as one JSON file."""
    user_id = _user_id(request)
    store = await _store()
    namespaces: list[tuple[str, ...]] = []
    while True:
        page = await store.alist_namespaces(prefix=("*", user_id), limit=_SCAN_PAGE, offset=len(namespaces))
        namespaces.extend(page)
        if len(page) < _SCAN_PAGE:
            break
    memories: list[MemoryOut] = []
    other: list[StoredRecord] = []
    history: list[dict[str, Any]] = []
    memory_failures: list[MemoryFailureOut] = []
    profile: dict[str, Any] | None = None
    for namespace in namespaces:
        for item in await _all_items(store, namespace):
            if item.namespace == memory_namespace(user_id):
                memories.append(_memory_out(item))
            elif item.namespace == profile_namespace(user_id) and item.key == PROFILE_KEY:
                profile = item.value
            elif item.namespace == history_namespace(user_id):
                history.append(item.value)
            elif item.namespace == failure_namespace(user_id):
                memory_failures.append(_failure_out(item.key, item.value))
            elif item.namespace[1:2] == (user_id,):
                other.append(
                    StoredRecord(
                        namespace=list(item.namespace),
                        key=item.key,
                        value=item.value,
                        created_at=item.created_at,
                        updated_at=item.updated_at,
                    )
                )
    document = Export(
        user_id=user_id,
        exported_at=datetime.now(UTC),
        profile=profile,
        memories=memories,
        history=sorted(history, key=lambda entry: str(entry.get("at", ""))),
        memory_failures=sorted(memory_failures, key=lambda failure: failure.first_failed_at),
        other_records=other,
    )
    filename = f"memories-{user_id}.json".replace('"', "")
    return _ok(document, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _failure_out(key: str, value: Mapping[str, Any]) -> MemoryFailureOut:
    return MemoryFailureOut.model_validate({**value, "id": key})


@_operation("List messages the memory service failed to process", 200, MemoryFailurePage, problems=(401, 422))
async def list_memory_failures(request: Request) -> Response:
    """Batches of your conversations whose memories could not be extracted, retried or set aside."""
    user_id = _user_id(request)
    records = await failures.all_records(await _store(), user_id)
    return _ok(MemoryFailurePage(items=[_failure_out(key, value) for key, value in records]))


@_operation(
    "Retry messages the memory service set aside",
    200,
    MemoryFailureOut,
    parameters=[_FAILURE_ID],
    problems=(401, 404, 409, 422),
)
async def retry_memory_failure(request: Request) -> Response:
    """Ask for a set-aside batch to be processed again: a memory run of its conversation starts at once.

    It uses the memory assistant's settings of this time, e.g. another model. Should it not
    start, the conversation's next memory run processes the batch.
    """
    user_id = _user_id(request)
    key = request.path_params["failure_id"]
    try:
        limits.check_key(key)
    except limits.LimitError as error:
        raise ApiError(error.status_code, str(error)) from None
    store = await _store()
    current = await failures.load(store, user_id, key)
    if current is None:
        raise ApiError(404, f"No failed batch has id {key!r}.")
    if current.get("status") == "retrying":
        raise ApiError(409, f"This batch is retried automatically after {current.get('retry_at')}; no need to ask.")
    value = await failures.request_retry(store, user_id, key)
    assert value is not None
    if value.get("rerun"):
        await failures.start_run(value["rerun"])
    return _ok(_failure_out(key, value))


@_operation(
    "Read the history of one of your memories",
    200,
    MemoryHistory,
    parameters=[_MEMORY_ID],
    problems=(401, 404, 422),
)
async def memory_history(request: Request) -> Response:
    """Every change to one memory, oldest first: the first entry says where it came from."""
    user_id = _user_id(request)
    store = await _store()
    item = await _own_memory(store, user_id, request.path_params["memory_id"])
    entries = await history(store, user_id, item.key)
    # The history holds every memory type's changes by key: keep only this memory's.
    mine = [entry for entry in entries if tuple(entry.get("namespace", ())) == item.namespace]
    return _ok(MemoryHistory(items=mine))


@_operation("List your other memory records", 200, RecordPage, problems=(401, 422))
async def list_records(request: Request) -> Response:
    """Your episodes, learned instructions and records of custom memory types, as stored."""
    user_id = _user_id(request)
    store = await _store()
    custom: list[tuple[str, ...]] = []
    while True:
        page = await store.alist_namespaces(prefix=("custom", user_id), limit=_SCAN_PAGE, offset=len(custom))
        custom.extend(page)
        if len(page) < _SCAN_PAGE:
            break
    namespaces = [episode_namespace(user_id), instructions_namespace(user_id), *custom]
    records = [
        StoredRecord(
            namespace=list(item.namespace),
            key=item.key,
            value=item.value,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )
        for namespace in namespaces
        for item in await _all_items(store, namespace)
    ]
    return _ok(RecordPage(items=records))


_PAGE_FILE = Path(__file__).with_name("memory_page.html")
# The page loads nothing from elsewhere and builds every piece of stored text as text; the
# policy makes sure of the first, and that no other site frames it.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
}


async def memory_page(request: Request) -> Response:
    """The memory page: static HTML that calls the routes above with the caller's token.

    It holds no data, so it answers without a token (``deployment.auth.PUBLIC_PAGES``).
    """
    return HTMLResponse(_PAGE_FILE.read_text(encoding="utf-8"), headers=_PAGE_HEADERS)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def build_app(settings: AuthSettings = SETTINGS) -> Starlette:
    """The memory routes as a Starlette app (``settings`` decide who the caller is)."""
    application = Starlette(
        routes=[
            Route("/me/memories", list_memories, methods=["GET"]),
            Route("/me/memories", delete_all_memories, methods=["DELETE"]),
            Route("/me/memories/{memory_id}", get_memory, methods=["GET"]),
            Route("/me/memories/{memory_id}", edit_memory, methods=["PATCH"]),
            Route("/me/memories/{memory_id}", delete_memory, methods=["DELETE"]),
            Route("/me/memories/{memory_id}/history", memory_history, methods=["GET"]),
            Route("/me/records", list_records, methods=["GET"]),
            # HTML for people, not part of the API: left out of /openapi.json.
            Route("/me/page", memory_page, methods=["GET"], include_in_schema=False),
            Route("/me/profile", get_profile, methods=["GET"]),
            Route("/me/profile", edit_profile, methods=["PATCH"]),
            Route("/me/profile", delete_profile, methods=["DELETE"]),
            Route("/me/export", export, methods=["GET"]),
            Route("/me/memory-failures", list_memory_failures, methods=["GET"]),
            Route("/me/memory-failures/{failure_id}/retry", retry_memory_failure, methods=["POST"]),
        ],
        exception_handlers={ApiError: _api_error},
        # The server runs this app's middleware in front of every route it serves, not only these.
        middleware=[Middleware(AuthGate), Middleware(LoopbackErrors)],
    )
    application.state.auth_settings = settings
    return application


app = build_app()
