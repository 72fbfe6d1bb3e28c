"""Memory management for end users: the caller's own memories and profile over HTTP.

A FastAPI app served by the deployment itself (``langgraph.json``: ``"http": {"app":
"deployment.routes:app", "enable_custom_route_auth": true}``), so the routes sit behind the
same auth as the rest of the API. Every route is under ``/me``: there is no user parameter to
tamper with, the user is the token's (``current_user``), and a query parameter a route does
not declare, such as ``?user_id=``, is refused. With auth off they act for the local user.

The routes use the server's own store, the one its ``/store`` API and the graphs use, so they
see exactly what the graphs read and write, whichever backend the deployment configures.
They get it from ``langgraph_api.store.get_store()`` rather than ``langgraph.config.get_store()``:
in langgraph-api 0.16.7 the latter, in a custom route, returns the in-memory store as it was
before the server configured it (its middleware captures the store on the lifespan event),
so it would see no memories at all.

FastAPI validates parameters and bodies against the models below and describes the routes
from them; the server merges this app's OpenAPI paths and components into ``/openapi.json``.
Every refusal is ``{"detail": "<what to fix>"}``, validation errors included (``problems``).
``GET /me/page`` serves the memory page (``memory_page.html``), a browser front end to them.

Changes recorded in a memory's history can be undone (``POST /me/memories/{id}/undo``), and
memories that a change removed are listed from the history (``GET /me/deleted-memories``). A
memory the user deletes here is forgotten with its history, so it is not among them.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from langgraph.store.base import BaseStore, Item
from langgraph_api.errors import http_exception_handler
from langgraph_api.store import get_store
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from deployment import limits, problems
from deployment.auth import SETTINGS, caller_user_id
from deployment.gate import AuthGate
from deployment.json_bodies import StrictJSONRoute
from deployment.loopback_errors import LoopbackErrors
from deployment.profile_patch import ProfilePatch, patched_profile
from deployment.tokens import TokenError
from memory.history import (
    Action,
    CannotUndo,
    NothingToUndo,
    Provenance,
    Source,
    deleted,
    forget,
    history,
    record_change,
    undo_latest_change,
)
from memory.records import (
    MEMORY_FIELD,
    PROFILE_KEY,
    cursor_namespace,
    failure_namespace,
    history_namespace,
    memory_namespace,
    memory_text,
    profile_namespace,
    stated_at,
)
from memory.search import search_memories
from memory.write_guard import write_lock
from memory_graph import failures

DEFAULT_PAGE_SIZE = 20
_SCAN_PAGE = 100
_PAGE_FILE = Path(__file__).with_name("memory_page.html")
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
}
# Edits through these routes are the user's own: recorded in the history like any change.
# Deletions erase the history of what was deleted, which would otherwise keep its text.
_BY_USER = Provenance("user", None, [])


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


class HistoryEntry(BaseModel):
    """One recorded change to a memory, as stored; the first says where the memory came from."""

    model_config = ConfigDict(extra="allow")

    namespace: list[str]
    memory_key: str
    action: Action
    before: Any = Field(description="The value before the change (null for a creation).")
    after: Any = Field(description="The value after the change (null for a deletion).")
    at: str = Field(description="When the change was made (ISO 8601).")
    source: Source = Field(description="What made it: the agent, the memory service, feedback, or the user here.")
    thread_id: str | None = Field(default=None, description="The conversation it came from, if any.")
    message_ids: list[str] = Field(default_factory=list, description="The messages it came from.")


class HistoryPage(BaseModel):
    """Every change to one memory, oldest first."""

    items: list[HistoryEntry]


class Undone(BaseModel):
    """The outcome of an undo: the memory as it is now, and the change that was undone."""

    memory: MemoryOut | None = Field(
        description="The memory after the undo; null when the undo deleted it (the change undone created it)."
    )
    undone: HistoryEntry = Field(description="The change that was undone, as its history recorded it.")


class DeletedMemoryOut(BaseModel):
    """A memory that a recorded change removed, as it was just before."""

    id: str = Field(description="The memory's id: undo its deletion with POST /me/memories/{id}/undo.")
    content: str = Field(description="The memory's last text.")
    stated_at: datetime | None = Field(default=None, description="When it was said, if known.")
    deleted_at: str = Field(description="When it was removed (ISO 8601).")
    source: Source = Field(description="What removed it: the agent, the memory service, feedback, or you (an undo).")
    thread_id: str | None = Field(default=None, description="The conversation that removed it, if any.")


class DeletedMemoryPage(BaseModel):
    """A page of the caller's deleted memories, most recently deleted first."""

    items: list[DeletedMemoryOut]
    limit: int
    offset: int


class ProfileOut(BaseModel):
    """The caller's profile document; ``profile`` is null until something is known."""

    profile: dict[str, Any] | None
    updated_at: datetime | None


class StoredRecord(BaseModel):
    """A record kept for the caller under one of their namespaces, as stored."""

    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RecordPage(BaseModel):
    """The caller's records other than memories, the profile and the service's bookkeeping."""

    items: list[StoredRecord] = Field(description="Episodes, learned instructions, custom memory types...")


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


# --- Dependencies -------------------------------------------------------------------------

# Checked before the route by the server's auth; declared here so the operations carry it.
_BEARER = HTTPBearer(scheme_name="BearerAuth", bearerFormat="JWT", auto_error=False)


async def current_user(
    request: Request, _token: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
) -> str:
    """The caller; refuses query parameters the route does not declare (e.g. a ``user_id``)."""
    try:
        user_id = caller_user_id(SETTINGS, request.scope.get("user"))
    except TokenError as error:
        raise HTTPException(401, str(error)) from None
    route = request.scope["route"]
    assert isinstance(route, APIRoute)
    accepted = [param.alias for param in route.dependant.query_params]
    unknown = sorted(set(request.query_params) - set(accepted))
    if unknown:
        takes = f"it accepts only {accepted}" if accepted else "it takes none"
        raise HTTPException(422, f"Unknown query parameters {unknown}: {takes}. The user is always the token's.")
    return user_id


async def _store() -> BaseStore:
    return await get_store()


CurrentUser = Annotated[str, Depends(current_user)]
Store = Annotated[BaseStore, Depends(_store)]
_KEY = {"min_length": 1, "max_length": limits.MAX_KEY_CHARS, "pattern": r"^[^\x00-\x1f\x7f]+$"}
MemoryId = Annotated[str, PathParam(description="The memory's id, as listed.", **_KEY)]
FailureId = Annotated[str, PathParam(description="The failure's id, as listed.", **_KEY)]
Limit = Annotated[int, Query(ge=1, le=limits.MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=limits.MAX_OFFSET)]
# An undo that the history does not allow; documented apart from the failed batches' 409.
_UNDO_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": problems.Problem, "description": "The memory's latest change cannot be undone; `detail` says why."}
}


# --- Helpers ------------------------------------------------------------------------------


def _memory_out(item: Item) -> MemoryOut:
    return MemoryOut(
        id=item.key,
        content=memory_text(item.value),
        stated_at=stated_at(item.value),
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _stored(item: Item) -> StoredRecord:
    return StoredRecord(
        namespace=list(item.namespace),
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _failure_out(key: str, value: dict[str, Any]) -> MemoryFailureOut:
    return MemoryFailureOut.model_validate({**value, "id": key})


async def _all_items(store: BaseStore, namespace: tuple[str, ...]) -> list[Item]:
    """Every item under ``namespace`` (paged through, so no single call is unbounded)."""
    items: list[Item] = []
    while True:
        page = await store.asearch(namespace, limit=_SCAN_PAGE, offset=len(items))
        items.extend(page)
        if len(page) < _SCAN_PAGE:
            return items


async def _kept_items(store: BaseStore, user_id: str) -> list[Item]:
    """Every item kept for the user: those of each namespace ``("<kind>", user_id, ...)``."""
    namespaces: list[tuple[str, ...]] = []
    while True:
        page = await store.alist_namespaces(prefix=("*", user_id), limit=_SCAN_PAGE, offset=len(namespaces))
        namespaces.extend(page)
        if len(page) < _SCAN_PAGE:
            break
    # A search covers deeper namespaces too: keep each item under its own namespace only.
    return [
        item for namespace in namespaces for item in await _all_items(store, namespace) if item.namespace == namespace
    ]


async def _own_memory(store: BaseStore, user_id: str, memory_id: str) -> Item:
    item = await store.aget(memory_namespace(user_id), memory_id)
    if item is None:
        raise HTTPException(404, f"No memory has id {memory_id!r}.")
    return item


def _undoable(namespace: tuple[str, ...]) -> Callable[[Mapping[str, Any]], object]:
    """A check that a change of the history can be undone into ``namespace``.

    The user can write to their history through the store API, where its entries are held to
    no shape and its values to no memory limits: such an entry is refused, not stored.
    """

    def check(entry: Mapping[str, Any]) -> None:
        try:
            HistoryEntry.model_validate(entry)
            if entry["before"] is not None:
                limits.check_value(namespace, entry["before"])
        except (ValidationError, limits.LimitError) as error:
            raise CannotUndo(f"the history's entry of it is not one this service wrote ({error})") from None

    return check


def _deleted_out(entry: Mapping[str, Any]) -> DeletedMemoryOut | None:
    """A deleted memory as listed, from the entry that removed it (None if it is not one this service wrote)."""
    try:
        return DeletedMemoryOut(
            id=entry["memory_key"],
            content=memory_text(entry["before"]),
            stated_at=stated_at(entry["before"]),
            deleted_at=entry["at"],
            source=entry["source"],
            thread_id=entry.get("thread_id"),
        )
    except (KeyError, ValidationError):
        return None


# --- Routes -------------------------------------------------------------------------------


class MemoryRoutes(FastAPI):
    """The app of the memory routes, whose OpenAPI document the server merges into its own."""

    def openapi(self) -> dict[str, Any]:
        """Paths and components only: the server's document keeps its own title and version."""
        return {**super().openapi(), "info": {}}


app = MemoryRoutes(
    # The server serves its own documentation; these routes would shadow it.
    openapi_url=None,
    docs_url=None,
    redoc_url=None,
    # Every route may refuse a missing token (401) and an invalid parameter or body (422).
    responses=problems.responses(401, 422),
    exception_handlers={
        # The server's own handler, which FastAPI's default would replace on every route it serves.
        StarletteHTTPException: http_exception_handler,
        RequestValidationError: problems.validation_problem,
        limits.LimitError: problems.limit_problem,
    },
    # The server runs this app's middleware in front of every route it serves, not only these.
    middleware=[Middleware(AuthGate), Middleware(LoopbackErrors)],
    # Operation ids are the function names.
    generate_unique_id_function=lambda route: route.name,
)
# The server's document has its own tags; these operations are under one of their own.
app.router.tags = ["Memories"]
app.router.route_class = StrictJSONRoute


@app.get("/me/memories", summary="List your memories")
async def list_memories(
    user_id: CurrentUser,
    store: Store,
    query: Annotated[
        str,
        Query(
            max_length=limits.MAX_QUERY_CHARS,
            description="Rank against this text as recall does (meaning and words) instead of listing in "
            "store order (empty: list).",
        ),
    ] = "",
    limit: Limit = DEFAULT_PAGE_SIZE,
    offset: Offset = 0,
) -> MemoryPage:
    """A page of the caller's memories, optionally ranked by meaning against a query."""
    namespace = memory_namespace(user_id)
    if query:
        items = await search_memories(store, namespace, query, limit, offset=offset)
    else:
        items = await store.asearch(namespace, limit=limit, offset=offset)
    return MemoryPage(items=[_memory_out(item) for item in items], limit=limit, offset=offset)


@app.delete("/me/memories", summary="Delete all your memories")
async def delete_all_memories(user_id: CurrentUser, store: Store) -> Deleted:
    """Delete every memory of the caller (the profile is kept: delete it separately)."""
    items = await _all_items(store, memory_namespace(user_id))
    for item in items:
        await store.adelete(item.namespace, item.key)
    await forget(store, user_id, memory_namespace(user_id))
    return Deleted(deleted=len(items))


@app.get("/me/memories/{memory_id}", summary="Read one of your memories", responses=problems.responses(404))
async def get_memory(user_id: CurrentUser, store: Store, memory_id: MemoryId) -> MemoryOut:
    """One memory of the caller; another user's memory id is simply not found."""
    return _memory_out(await _own_memory(store, user_id, memory_id))


@app.patch("/me/memories/{memory_id}", summary="Edit one of your memories", responses=problems.responses(404, 413))
async def edit_memory(user_id: CurrentUser, store: Store, memory_id: MemoryId, edit: MemoryEdit) -> MemoryOut:
    """Replace a memory's text, keeping any other fields stored with it; it is re-indexed for search."""
    async with write_lock(store, user_id, memory_namespace(user_id)):
        item = await _own_memory(store, user_id, memory_id)
        value = {**item.value, MEMORY_FIELD: edit.content}
        await store.aput(item.namespace, item.key, value)
        await record_change(store, user_id, item.namespace, item.key, "update", item.value, value, _BY_USER)
    updated = await store.aget(item.namespace, item.key)
    assert updated is not None
    return _memory_out(updated)


@app.delete(
    "/me/memories/{memory_id}",
    summary="Delete one of your memories",
    status_code=204,
    response_class=Response,
    responses=problems.responses(404),
)
async def delete_memory(user_id: CurrentUser, store: Store, memory_id: MemoryId) -> None:
    """Delete one memory of the caller."""
    item = await _own_memory(store, user_id, memory_id)
    await store.adelete(item.namespace, item.key)
    await forget(store, user_id, item.namespace, item.key)


@app.get(
    "/me/memories/{memory_id}/history",
    summary="Read the history of one of your memories",
    responses=problems.responses(404),
)
async def get_memory_history(user_id: CurrentUser, store: Store, memory_id: MemoryId) -> HistoryPage:
    """Every change to one memory of the caller, oldest first, each with where it came from.

    A deleted memory whose deletion was recorded (see GET /me/deleted-memories) has one too.
    """
    namespace = memory_namespace(user_id)
    entries = await history(store, user_id, memory_id, namespace)
    if not entries:
        await _own_memory(store, user_id, memory_id)
    return HistoryPage.model_validate({"items": entries})


@app.post(
    "/me/memories/{memory_id}/undo",
    summary="Undo the latest change to one of your memories",
    responses={**problems.responses(404), **_UNDO_CONFLICT},
)
async def undo_memory_change(user_id: CurrentUser, store: Store, memory_id: MemoryId) -> Undone:
    """Put a memory back as it was before its latest recorded change, and record that.

    An update is reverted to the earlier text (with its other fields), a deleted memory comes
    back under the same id with its fields (``stated_at`` included), a memory just created is
    deleted. The undo is a change of its own (action ``undo``, source ``user``): undoing again
    re-applies what was undone. Deleted memories and their ids: GET /me/deleted-memories.
    """
    namespace = memory_namespace(user_id)
    try:
        async with write_lock(store, user_id, namespace):
            undone = await undo_latest_change(
                store, user_id, namespace, memory_id, _BY_USER, check=_undoable(namespace)
            )
    except NothingToUndo:
        if await store.aget(namespace, memory_id) is not None:
            raise HTTPException(
                404,
                f"Memory {memory_id!r} has no recorded change to undo (it was written straight to the store); "
                f"edit it with PATCH /me/memories/{memory_id} instead.",
            ) from None
        raise HTTPException(
            404,
            f"No memory of yours has id {memory_id!r}, and no change to one is recorded: take the id from "
            "GET /me/memories, or from GET /me/deleted-memories for a deleted memory.",
        ) from None
    except CannotUndo as error:
        raise HTTPException(409, f"The latest change to memory {memory_id!r} cannot be undone: {error}") from None
    item = await store.aget(namespace, memory_id)
    return Undone.model_validate({"memory": _memory_out(item) if item else None, "undone": undone})


@app.get("/me/deleted-memories", summary="List your deleted memories")
async def list_deleted_memories(
    user_id: CurrentUser, store: Store, limit: Limit = DEFAULT_PAGE_SIZE, offset: Offset = 0
) -> DeletedMemoryPage:
    """Memories a recorded change removed (the agent, the memory service, an undo), most recently first.

    Each can be brought back with POST /me/memories/{id}/undo. Memories you delete with
    DELETE /me/memories are forgotten with their history and are not listed.
    """
    listed = [out for entry in await deleted(store, user_id, memory_namespace(user_id)) if (out := _deleted_out(entry))]
    return DeletedMemoryPage(items=listed[offset : offset + limit], limit=limit, offset=offset)


@app.get("/me/profile", summary="Read your profile")
async def get_profile(user_id: CurrentUser, store: Store) -> ProfileOut:
    """The profile document the service keeps about the caller."""
    item = await store.aget(profile_namespace(user_id), PROFILE_KEY)
    return ProfileOut(profile=item.value if item else None, updated_at=item.updated_at if item else None)


@app.patch("/me/profile", summary="Edit your profile", responses=problems.responses(413))
async def edit_profile(user_id: CurrentUser, store: Store, patch: ProfilePatch) -> ProfileOut:
    """Set some profile fields; the others keep their value (null clears one)."""
    namespace = profile_namespace(user_id)
    current = await store.aget(namespace, PROFILE_KEY)
    before = current.value if current else None
    profile = patched_profile(before or {}, patch)
    limits.check_value(namespace, profile)
    await store.aput(namespace, PROFILE_KEY, profile, index=False)
    action: Action = "update" if current else "create"
    await record_change(store, user_id, namespace, PROFILE_KEY, action, before, profile, _BY_USER)
    saved = await store.aget(namespace, PROFILE_KEY)
    return ProfileOut(profile=profile, updated_at=saved.updated_at if saved else None)


@app.delete("/me/profile", summary="Delete your profile", status_code=204, response_class=Response)
async def delete_profile(user_id: CurrentUser, store: Store) -> None:
    """Forget the caller's profile (it is rebuilt from later conversations)."""
    await store.adelete(profile_namespace(user_id), PROFILE_KEY)
    await forget(store, user_id, profile_namespace(user_id), PROFILE_KEY)


@app.get("/me/records", summary="List your other records")
async def list_records(user_id: CurrentUser, store: Store) -> RecordPage:
    """What else is kept for the caller: episodes, learned instructions, records of custom memory types."""
    shown_elsewhere = {
        memory_namespace(user_id),
        profile_namespace(user_id),
        history_namespace(user_id),
        failure_namespace(user_id),
        cursor_namespace(user_id),
    }
    items = await _kept_items(store, user_id)
    return RecordPage(items=[_stored(item) for item in items if item.namespace not in shown_elsewhere])


@app.get("/me/export", summary="Export everything kept about you")
async def export(user_id: CurrentUser, store: Store, response: Response) -> Export:
    """The caller's memories, profile and every other record under their namespaces, as one JSON file."""
    memories: list[MemoryOut] = []
    other: list[StoredRecord] = []
    changes: list[dict[str, Any]] = []
    memory_failures: list[MemoryFailureOut] = []
    profile: dict[str, Any] | None = None
    for item in await _kept_items(store, user_id):
        if item.namespace == memory_namespace(user_id):
            memories.append(_memory_out(item))
        elif item.namespace == profile_namespace(user_id) and item.key == PROFILE_KEY:
            profile = item.value
        elif item.namespace == history_namespace(user_id):
            changes.append(item.value)
        elif item.namespace == failure_namespace(user_id):
            memory_failures.append(_failure_out(item.key, item.value))
        else:
            other.append(_stored(item))
    filename = f"memories-{user_id}.json".replace('"', "")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Export(
        user_id=user_id,
        exported_at=datetime.now(UTC),
        profile=profile,
        memories=memories,
        history=sorted(changes, key=lambda entry: str(entry.get("at", ""))),
        memory_failures=sorted(memory_failures, key=lambda failure: failure.first_failed_at),
        other_records=other,
    )


@app.get("/me/memory-failures", summary="List messages the memory service failed to process")
async def list_memory_failures(user_id: CurrentUser, store: Store) -> MemoryFailurePage:
    """Batches of your conversations whose memories could not be extracted, retried or set aside."""
    records = await failures.all_records(store, user_id)
    return MemoryFailurePage(items=[_failure_out(key, value) for key, value in records])


@app.post(
    "/me/memory-failures/{failure_id}/retry",
    summary="Retry messages the memory service set aside",
    responses=problems.responses(404, 409),
)
async def retry_memory_failure(user_id: CurrentUser, store: Store, failure_id: FailureId) -> MemoryFailureOut:
    """Ask for a set-aside batch to be processed again: a memory run of its conversation starts at once.

    It uses the memory assistant's settings of this time, e.g. another model. Should it not
    start, the conversation's next memory run processes the batch.
    """
    current = await failures.load(store, user_id, failure_id)
    if current is None:
        raise HTTPException(404, f"No failed batch has id {failure_id!r}.")
    if current.get("status") == "retrying":
        raise HTTPException(
            409, f"This batch is retried automatically after {current.get('retry_at')}; no need to ask."
        )
    value = await failures.request_retry(store, user_id, failure_id)
    assert value is not None
    if value.get("rerun"):
        await failures.start_run(value["rerun"])
    return _failure_out(failure_id, value)


@app.api_route("/me/page", methods=["GET", "HEAD"], include_in_schema=False)
def memory_page() -> HTMLResponse:
    """The memory page: a browser front end to the routes above."""
    return HTMLResponse(_PAGE_FILE.read_text(encoding="utf-8"), headers=_PAGE_HEADERS)
