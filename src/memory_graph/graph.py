"""The ``memory_graph``: turns a quiet conversation into consolidated long-term memories.

One pass per batch of unprocessed messages::

    begin_run ─> load_batch ─> extract_batch ─> finish_batch ─> load_batch ...
                     └──────────────┬──────────────────┘
                                    └─> finish_run (nothing left, or the run stops)

``extract_batch`` updates every memory type the assistant keeps, concurrently, each with a
langmem memory manager (see ``consolidation``). All model calls of the run share one budget
(see ``budget``). The cursor moves only after every type's writes succeeded; a batch that
fails is retried by later runs and eventually set aside (see ``failures``). The run's output
(``report``) and the server log say what it spent.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
    get_buffer_string,
)
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph_sdk import get_client
from langmem import create_prompt_optimizer

from memory.history import Provenance, Source
from memory.identity import resolve_user_id
from memory.locks import namespace_scope, user_lock
from memory.records import instructions_namespace, message_time, parse_time
from memory_graph import failures, kinds, prompts
from memory_graph.budget import BudgetExceeded, CallLog, ExtractionError, MeteredChatModel, RunBudget, Usage
from memory_graph.consolidation import Extraction, MemoryCollection, Writes, extract, write_document
from memory_graph.context import MemoryContext
from memory_graph.cursor import load_processed_count, save_processed_count
from memory_graph.evidence import Evidence
from memory_graph.models import load_chat_model
from memory_graph.state import MemoryInput, MemoryState

logger = logging.getLogger(__name__)

# Longest text used as the query that finds memories related to a batch.
_RELATED_QUERY_CHARS = 2000


class Pending(Protocol):
    """One memory type's changes from a batch, written once every type's extraction succeeded."""

    async def write(self, store: BaseStore) -> Writes:
        """Write the changes; say what was written."""
        ...


Job = Callable[[RunBudget], Awaitable[Pending | None]]


def _messages(raw: Any) -> list[AnyMessage]:
    return [cast(AnyMessage, message) for message in convert_to_messages(raw)]


def _store(runtime: Runtime[MemoryContext]) -> BaseStore:
    if runtime.store is None:
        raise RuntimeError(
            "memory_graph needs a store: run it on a LangGraph server, or compile it with `builder.compile(store=...)`."
        )
    return runtime.store


def _context(runtime: Runtime[MemoryContext]) -> MemoryContext:
    return runtime.context if runtime.context is not None else MemoryContext()


def _user_id(runtime: Runtime[MemoryContext]) -> str:
    return resolve_user_id(_context(runtime).user_id, get_config())


def _thread_key(state: MemoryState) -> str:
    configurable = get_config().get("configurable") or {}
    return state.get("chat_thread_id") or str(configurable.get("thread_id", "default"))


def _model(context: MemoryContext) -> BaseChatModel:
    return load_chat_model(context.model, timeout=context.model_timeout_seconds, max_retries=context.model_max_retries)


async def _load_conversation(state: MemoryState) -> list[AnyMessage]:
    if state.get("messages"):
        return _messages(state["messages"])
    thread_id = state.get("chat_thread_id")
    if not thread_id:
        raise ValueError("memory_graph input needs `messages` or a `chat_thread_id` to read.")
    thread_state = await get_client().threads.get_state(thread_id)
    values = thread_state["values"]
    messages = values.get("messages", []) if isinstance(values, dict) else []
    return _messages(messages)


async def begin_run(state: MemoryState) -> dict[str, Any]:
    """Start this run's accounting afresh (a memory thread keeps its state between runs)."""
    return {
        "run_started_at": time.time(),
        "usage": Usage().as_dict(),
        "writes": asdict(Writes()),
        "batches_done": 0,
        "batches_set_aside": 0,
        "stop_reason": None,
        "report": None,
    }


def _batch_info(state: MemoryState, conversation: list[AnyMessage], start: int, end: int) -> dict[str, Any]:
    return {
        "chat_thread_id": _thread_key(state),
        "first_message_id": conversation[start].id,
        "last_message_id": conversation[end - 1].id,
        "start": start,
        "end": end,
    }


def _first_message(conversation: list[AnyMessage], index: int) -> str:
    return conversation[index].id or f"#{index}"


async def _replay_batch(
    state: MemoryState, runtime: Runtime[MemoryContext], conversation: list[AnyMessage]
) -> dict[str, Any] | None:
    """A set-aside batch its owner asked to retry, as the next batch, if there is one."""
    store, user_id, context = _store(runtime), _user_id(runtime), _context(runtime)
    for key, value in await failures.requested(store, user_id, _thread_key(state)):
        ids = [message.id for message in conversation]
        if value.get("first_message_id") in ids and value.get("last_message_id") in ids:
            start, end = ids.index(value["first_message_id"]), ids.index(value["last_message_id"]) + 1
        elif not value.get("first_message_id") and value.get("end", 0) <= len(conversation):
            start, end = int(value["start"]), int(value["end"])
        else:
            gone = "Its messages are no longer in the conversation, so it cannot be retried."
            await failures.record(store, user_id, key, value, gone, max_attempts=1, first_delay=0, give_up=True)
            continue
        if not _anything_shown(conversation[start:end]):
            await failures.clear(store, user_id, key)  # only tool traffic: nothing to extract
            continue
        context_start = _back_by_shown(conversation, start, context.overlap_messages)
        return {
            **_window(conversation, context_start, start, end),
            "batch_end": end,
            "last_message_id": conversation[end - 1].id,
            "batch_info": _batch_info(state, conversation, start, end),
            "failure_key": key,
            "replay": True,
            "feedback_only": False,
            "done": False,
        }
    return None


def _shown(message: AnyMessage) -> bool:
    """Whether the extractor is shown the message: user messages and the assistant's text.

    The agent's tool calls and their results are left out: they are its own memory operations
    (``manage_memory``, ``search_memory``), whose facts came from the user's messages, which
    the extractor reads anyway. A runaway chat turn can leave a hundred of them; shown, they
    filled batch after batch with nothing new.
    """
    if message.type in ("tool", "function"):
        return False
    return message.type != "ai" or bool(message.text.strip())


def _anything_shown(messages: Sequence[AnyMessage]) -> bool:
    return any(_shown(message) for message in messages)


def _as_shown(message: AnyMessage) -> AnyMessage:
    """The message as the extractor reads it: an answer's text without the tool calls it also made."""
    if not isinstance(message, AIMessage) or not (message.tool_calls or message.invalid_tool_calls):
        return message
    extra = {k: v for k, v in message.additional_kwargs.items() if k not in ("tool_calls", "function_call")}
    update = {"content": message.text, "tool_calls": [], "invalid_tool_calls": [], "additional_kwargs": extra}
    return message.model_copy(update=update)


def _back_by_shown(conversation: Sequence[AnyMessage], position: int, count: int) -> int:
    """Where a window starts that shows ``count`` messages before ``position`` (or all there are)."""
    start = position
    while start > 0 and count > 0:
        start -= 1
        if _shown(conversation[start]):
            count -= 1
    return start


def _batch_end(conversation: Sequence[AnyMessage], start: int, count: int) -> int:
    """Where a batch from ``start`` ends: before its ``count + 1``-th shown message, else at the end.

    So ``max_messages_per_batch`` counts only what the extractor is shown, and tool traffic
    goes with the shown messages before it.
    """
    shown = 0
    for position in range(start, len(conversation)):
        if _shown(conversation[position]):
            if shown == count:
                return position
            shown += 1
    return len(conversation)


def _said_at(conversation: Sequence[AnyMessage], start: int, end: int) -> str | None:
    """When the facts of ``conversation[start:end]`` were said, as far as the messages' times tell.

    The latest time of its user messages. The agent stamps only those, so for a batch without
    one (the assistant's replies only), the latest time of any message up to ``end``: the user's
    words the replies answer. None if no message carries a time.
    """
    said = [moment for m in conversation[start:end] if m.type == "human" and (moment := message_time(m))]
    said = said or [moment for m in conversation[:end] if (moment := message_time(m))]
    return max(said).isoformat() if said else None


def _window(conversation: Sequence[AnyMessage], context_start: int, start: int, end: int) -> dict[str, Any]:
    """The batch state of ``conversation[start:end]`` after the context from ``context_start``, as shown."""
    seen = [_as_shown(message) for message in conversation[context_start:start] if _shown(message)]
    new = [_as_shown(message) for message in conversation[start:end] if _shown(message)]
    return {"batch": [*seen, *new], "seen_in_batch": len(seen), "stated_at": _said_at(conversation, start, end)}


async def _pass_over(
    state: MemoryState, runtime: Runtime[MemoryContext], conversation: list[AnyMessage], start: int, end: int
) -> None:
    """Mark messages the extractor would not be shown as processed, without a model call."""
    store, user_id, thread = _store(runtime), _user_id(runtime), _thread_key(state)
    await failures.clear(store, user_id, failures.failure_key(thread, _first_message(conversation, start)))
    await save_processed_count(store, user_id, thread, end, conversation[end - 1].id)


async def load_batch(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Select the next batch: a set-aside one its owner asked to retry, else the next unprocessed messages.

    A batch holds at most ``max_messages_per_batch`` messages the extractor is shown (see
    ``_shown``), after a little already-seen context. New messages of which none is shown (only
    the agent's tool traffic) count as processed at once, with no model call. With nothing new
    but feedback given, the latest messages are re-read for the feedback only. A batch that
    failed before waits until its ``retry_at``; the run then ends (and, on a server, schedules
    itself for that time).
    """
    context, store, user_id = _context(runtime), _store(runtime), _user_id(runtime)
    conversation = await _load_conversation(state)
    replay = await _replay_batch(state, runtime, conversation)
    if replay is not None:
        return replay
    processed = await load_processed_count(store, user_id, _thread_key(state), conversation)
    batch_end = _batch_end(conversation, processed, context.max_messages_per_batch)
    if batch_end > processed and not _anything_shown(conversation[processed:batch_end]):
        await _pass_over(state, runtime, conversation, processed, batch_end)
        processed = batch_end
    feedback_only = batch_end <= processed and bool(state.get("feedback")) and _anything_shown(conversation)
    start = _back_by_shown(
        conversation, processed, context.max_messages_per_batch if feedback_only else context.overlap_messages
    )
    update: dict[str, Any] = {
        **_window(conversation, start, start if feedback_only else processed, batch_end),
        "batch_end": batch_end,
        "last_message_id": conversation[batch_end - 1].id if batch_end else None,
        "batch_info": None,
        "failure_key": None,
        "replay": False,
        "feedback_only": feedback_only,
        "done": batch_end <= processed and not feedback_only,
    }
    if feedback_only or update["done"]:
        return update
    key = failures.failure_key(_thread_key(state), _first_message(conversation, processed))
    update["batch_info"] = _batch_info(state, conversation, processed, batch_end)
    update["failure_key"] = key
    failed = await failures.load(store, user_id, key) or {}
    wait = failures.waiting_seconds(failed)
    if wait > 0:
        await _schedule_retry(state, runtime, wait)
        update["done"] = True
        update["stop_reason"] = f"The next batch failed before; it is tried again after {failed['retry_at']}."
    return update


def _dated(message: AnyMessage) -> AnyMessage:
    """The message with the day it was said in front, so "yesterday" can become a date."""
    moment = message_time(message)
    if moment is None or not isinstance(message.content, str):
        return message
    return message.model_copy(update={"content": f"[{moment:%Y-%m-%d %H:%M}] {message.content}"})


def transcript(state: MemoryState) -> list[AnyMessage]:
    """The batch as shown to the extractor (no tool traffic, see ``_shown``), dated, the processed part marked."""
    seen = state["seen_in_batch"]
    batch = [_dated(message) for message in state["batch"]]
    if not seen:
        return batch
    return [*batch[:seen], SystemMessage(prompts.NEW_MESSAGES_MARKER), *batch[seen:]]


def _stated_at(state: MemoryState) -> datetime:
    """When the batch's new facts were said, from the messages' times (see ``_said_at``), else now."""
    return parse_time(state.get("stated_at")) or datetime.now(UTC)


def route_batch(state: MemoryState) -> Literal["extract_batch", "finish_run"]:
    """Finish when there is nothing (new) to do; otherwise extract from the batch."""
    return "finish_run" if state["done"] else "extract_batch"


def _user_words(messages: Sequence[AnyMessage]) -> str:
    """What the user said in ``messages``: the only evidence a profile value may rest on."""
    return "\n".join(message.text for message in messages if isinstance(message, HumanMessage))


async def _extract(
    state: MemoryState, runtime: Runtime[MemoryContext], collection: MemoryCollection, budget: RunBudget
) -> Extraction:
    """Extract one memory type's changes from the batch (written later, with the others')."""
    context = _context(runtime)
    store, user_id = _store(runtime), _user_id(runtime)
    new_messages = state["batch"][state["seen_in_batch"] :]
    return await extract(
        store,
        collection,
        _model(context),
        transcript(state),
        query=get_buffer_string(new_messages)[-_RELATED_QUERY_CHARS:],
        related_limit=context.related_memories,
        user_id=user_id,
        provenance=Provenance("background", _thread_key(state), [m.id for m in new_messages]),
        budget=budget,
        attempts=context.extraction_attempts,
        evidence=Evidence(_user_words(new_messages)),
        stated_at=_stated_at(state),
    )


def _feedback_text(state: MemoryState) -> str:
    feedback = state.get("feedback") or {}
    parts = [f"score: {feedback['score']}" if "score" in feedback else "", feedback.get("comment", "")]
    return "; ".join(part for part in parts if part)


@dataclass
class InstructionsUpdate:
    """Procedural memory's change from one batch, written with the batch's other changes."""

    user_id: str
    key: str
    before: dict[str, Any] | None
    value: dict[str, Any]
    provenance: Provenance

    async def write(self, store: BaseStore) -> Writes:
        """Store the refined instructions and log the change."""
        namespace = instructions_namespace(self.user_id)
        return await write_document(store, self.user_id, namespace, self.key, self.before, self.value, self.provenance)


async def refine_instructions(
    state: MemoryState, runtime: Runtime[MemoryContext], budget: RunBudget
) -> InstructionsUpdate | None:
    """Procedural memory: refine the agent's instructions from feedback with langmem's optimizer."""
    context = _context(runtime)
    settings = context.memory.procedural
    store, user_id = _store(runtime), _user_id(runtime)
    key = settings.instructions_key(context.agent_assistant_id)
    current = await store.aget(instructions_namespace(user_id), key)
    prompt = current.value["prompt"] if current else context.base_prompt
    if not prompt:
        raise ValueError(
            "Procedural memory needs the agent's system prompt to refine: pass it as context `base_prompt`."
        )
    model = MeteredChatModel(base=_model(context), budget=budget, log=CallLog())
    optimizer = create_prompt_optimizer(model, kind="prompt_memory")
    new_prompt = await optimizer.ainvoke(
        {
            "trajectories": [(transcript(state), _feedback_text(state))],
            "prompt": {"name": "instructions", "prompt": prompt, "update_instructions": settings.instructions},
        }
    )
    if not new_prompt.strip() or new_prompt == prompt:
        return None
    base_prompt = current.value.get("base_prompt") if current else context.base_prompt
    source: Source = "feedback" if state.get("feedback") else "background"
    message_ids = [m.id for m in state["batch"][state["seen_in_batch"] :]]
    return InstructionsUpdate(
        user_id,
        key,
        current.value if current else None,
        {"prompt": new_prompt, "base_prompt": base_prompt},
        Provenance(source, _thread_key(state), message_ids),
    )


def _jobs(state: MemoryState, runtime: Runtime[MemoryContext]) -> list[tuple[str, str, Job]]:
    """What the batch asks for, as (name, lock scope, job): every memory type the assistant keeps.

    For feedback alone, only procedural memory.
    """
    memory, user_id = _context(runtime).memory, _user_id(runtime)
    collections: list[tuple[str, MemoryCollection]] = []
    if not state["feedback_only"]:
        if memory.semantic.enabled:
            collections.append(("semantic", kinds.semantic(user_id, memory.semantic)))
        if memory.profile.enabled:
            collections.append(("profile", kinds.profile(user_id, memory.profile)))
        if memory.episodic.enabled:
            collections.append(("episodic", kinds.episodic(user_id, memory.episodic)))
        collections += [(f"custom:{t.name}", kinds.custom(user_id, t)) for t in memory.custom_types]

    def extracting(collection: MemoryCollection) -> Job:
        return lambda budget: _extract(state, runtime, collection, budget)

    jobs = [(name, namespace_scope(collection.namespace), extracting(collection)) for name, collection in collections]
    if memory.procedural.enabled:
        jobs.append(("procedural", "instructions", lambda budget: refine_instructions(state, runtime, budget)))
    return jobs


async def extract_batch(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Update every memory type from the batch, all or nothing, within what is left of the run's budget.

    The types are extracted concurrently, each under its per-user lock (see ``locks``; all taken
    at once, in one order, so two runs never wait for each other in a circle). Their changes are
    written only if every type succeeded: a batch that fails writes nothing, deletions included,
    and is retried whole. A failure for a reason of the model's (``ExtractionError``) does not
    stop the other types' extraction; any other error fails the run as it is.
    """
    context, store, user_id = _context(runtime), _store(runtime), _user_id(runtime)
    budget = RunBudget(context.max_model_calls, context.max_prompt_tokens, Usage.from_dict(state.get("usage")))
    jobs = _jobs(state, runtime)
    writes = Writes(**(state.get("writes") or {}))
    async with AsyncExitStack() as locks:
        for scope in sorted({scope for _, scope, _ in jobs}):
            await locks.enter_async_context(user_lock(store, user_id, scope))
        results = await asyncio.gather(*(job(budget) for _, _, job in jobs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ExtractionError):
                raise result
        errors = [
            (name, result)
            for (name, _, _), result in zip(jobs, results, strict=True)
            if isinstance(result, ExtractionError)
        ]
        if not errors:
            for result in results:
                if result is not None and not isinstance(result, BaseException):
                    writes.add(await result.write(store))
    for name, error in errors:
        logger.warning("Memory extraction (%s) failed for user %s: %s", name, user_id, error)
    return {
        "usage": budget.used.as_dict(),
        "writes": asdict(writes),
        "batch_error": "; ".join(f"{name}: {error}" for name, error in errors) or None,
        "over_budget": any(isinstance(error, BudgetExceeded) for _, error in errors),
    }


def _rerun_request(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any] | None:
    """On a server, the ``runs.create`` arguments of another run like this one (None elsewhere).

    Its context holds only what the agent passed, so the memory assistant's settings of that
    time apply (e.g. a model changed since).
    """
    configurable = get_config().get("configurable") or {}
    if not configurable.get("langgraph_request_id"):
        return None
    return {
        "thread_id": str(configurable["thread_id"]),
        "assistant_id": str(configurable["assistant_id"]),
        "input": {"chat_thread_id": _thread_key(state)},
        "context": _context(runtime).model_dump(mode="json", include=set(failures.RERUN_CONTEXT)),
    }


async def _schedule_retry(state: MemoryState, runtime: Runtime[MemoryContext], delay: float) -> None:
    """On a server, run this graph again on this thread once a failed batch may be retried.

    A chat turn in between replaces that run with its own (which then schedules again), so
    the batch is retried whether or not the user goes on chatting. Outside a server the
    next turn's run retries it.
    """
    request = _rerun_request(state, runtime)
    if request is not None:
        await failures.start_run(request, after_seconds=max(1, round(delay)))


async def finish_batch(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Move the cursor past a processed batch, or count the failure: retry later, or set the batch aside.

    Nothing counts as processed unless every memory type's writes succeeded. A batch set aside
    is recorded (see ``failures``) before the cursor moves past it. A batch cut short by the
    budget after earlier batches of this run is left for the next run without counting as failed.
    """
    context, store, user_id = _context(runtime), _store(runtime), _user_id(runtime)
    error, key = state.get("batch_error"), state.get("failure_key")
    done = {"batches_done": state.get("batches_done", 0) + 1, "feedback": None}
    if error is None:
        if key is not None:
            await failures.clear(store, user_id, key)
        if not state["feedback_only"] and not state.get("replay"):
            await save_processed_count(store, user_id, _thread_key(state), state["batch_end"], state["last_message_id"])
        return done
    if state.get("over_budget") and state.get("batches_done", 0) > 0:
        return {"stop_reason": "The run reached its budget; the remaining messages are left for the next run."}
    if key is None:
        return {"stop_reason": f"Feedback could not be applied: {error}", "feedback": None}
    failure = await failures.record(
        store,
        user_id,
        key,
        {**(state.get("batch_info") or {}), "rerun": _rerun_request(state, runtime)},
        error,
        max_attempts=1 if state.get("replay") else context.batch_attempts,
        first_delay=context.retry_delay_seconds,
    )
    if failure["status"] == "retrying":
        await _schedule_retry(state, runtime, failures.waiting_seconds(failure))
        attempt, retry_at = failure["attempts"], failure["retry_at"]
        return {"stop_reason": f"The batch failed (attempt {attempt}: {error}); it is retried after {retry_at}."}
    logger.warning(
        "Memory batch of conversation %s (user %s) set aside after %d attempts: %s",
        _thread_key(state),
        user_id,
        failure["attempts"],
        error,
    )
    if not state.get("replay"):
        await save_processed_count(store, user_id, _thread_key(state), state["batch_end"], state["last_message_id"])
    return {**done, "batches_set_aside": state.get("batches_set_aside", 0) + 1}


def route_after_batch(state: MemoryState) -> Literal["load_batch", "finish_run"]:
    """Go on with the next batch unless the run was told to stop."""
    return "finish_run" if state.get("stop_reason") else "load_batch"


async def finish_run(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Report what the run did and spent, in its output and in the server log.

    ``requests`` counts every request sent to the provider, retries included; ``model_calls``
    counts a call its client retried once.
    """
    report = {
        **Usage.from_dict(state.get("usage")).as_dict(),
        "duration_seconds": round(time.time() - state.get("run_started_at", time.time()), 3),
        "batches_processed": state.get("batches_done", 0),
        "batches_set_aside": state.get("batches_set_aside", 0),
        "stopped": state.get("stop_reason"),
        "writes": state.get("writes") or asdict(Writes()),
    }
    logger.info(
        "Memory run for user %s, conversation %s: %d model calls (%d requests), %d prompt and %d completion tokens, "
        "%.1f s, %d batches (%d set aside)%s",
        _user_id(runtime),
        _thread_key(state),
        report["model_calls"],
        report["requests"],
        report["prompt_tokens"],
        report["completion_tokens"],
        report["duration_seconds"],
        report["batches_processed"],
        report["batches_set_aside"],
        f"; stopped: {report['stopped']}" if report["stopped"] else "",
    )
    return {"report": report}


builder = StateGraph(MemoryState, input_schema=MemoryInput, context_schema=MemoryContext)
builder.add_node(begin_run)
builder.add_node(load_batch)
builder.add_node(extract_batch)
builder.add_node(finish_batch)
builder.add_node(finish_run)
builder.add_edge(START, "begin_run")
builder.add_edge("begin_run", "load_batch")
builder.add_conditional_edges("load_batch", route_batch)
builder.add_edge("extract_batch", "finish_batch")
builder.add_conditional_edges("finish_batch", route_after_batch)
builder.add_edge("finish_run", END)

graph = builder.compile()
graph.name = "memory_graph"
