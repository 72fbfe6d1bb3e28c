"""A scripted, OpenAI-compatible HTTP server on loopback, for tests and benchmarks.

End-to-end tests and benchmarks must not touch the internet or need an API key,
yet they should drive the real ``openai`` client and langchain-openai
(``ChatOpenAI``, ``OpenAIEmbeddings``) exactly as the product does.  Pointing
``OPENAI_BASE_URL`` at this server achieves that: *rules* script what the
"model" answers, and a request log lets tests assert on what the product sent.

In-process use::

    with FakeOpenAI(rules=[{"when": {"contains": "hi"}, "then": {"content": "hello"}}]) as fake:
        run_the_product(env=fake.env())          # OPENAI_BASE_URL + OPENAI_API_KEY
        assert fake.requests()[-1]["tools"] == []

From another process, ``FakeOpenAIClient(base_url)`` offers the same
``set_rules`` / ``reset`` / ``requests`` / ``embeddings_count`` over HTTP.  For
manual runs next to ``langgraph dev``::

    python -m tests.support.fake_openai --port 8765 [--rules rules.json]

Rules
-----
A rule is ``{"when": {...}, "then": {...}, "times": n}``; the first rule whose
conditions all hold answers the request.  ``when`` keys (all optional):

``tool``          a function name that must be among the request's ``tools``;
``contains``      substring of the content of the last ``user`` message;
``any_contains``  substring of any message's content (system included);
``last_role``     role of the last message (``"tool"``: called after a tool result);
``model``         exact model name.

``then`` holds ``content`` and/or ``tool_calls`` (``[{"name", "arguments"}]``;
call ids are generated), or ``{"error": status}`` to fail with that HTTP
status (``"retry_after": seconds`` adds a ``Retry-After`` header).  A call's
``raw_arguments`` string is sent instead of JSON ``arguments`` (to send
arguments that are not valid JSON).  ``"hang": seconds`` delays the answer
(alone: then the fallback reply).  The placeholder ``{last_user}`` in
``content`` or in string values of ``arguments`` is replaced by the last user
message.  ``times: n`` retires the rule after n uses.  When nothing matches the
reply is the content ``"OK"``.

Misbehaving model
-----------------
``misbehaving_rules(mode)`` scripts the memory graph's extraction calls to
misbehave the way small local models and flaky providers do (see
``MISBEHAVIOURS``); the chat agent's calls are left alone.

Beware: the ``openai`` client retries 408/409/429/5xx responses twice by
default, so an unlimited ``error`` rule is hit three times per call; use
``max_retries=0`` on the client or ``times`` on the rule.

Endpoints
---------
``POST /v1/chat/completions`` (streaming and not), ``POST /v1/embeddings``, and
control endpoints outside ``/v1``: ``PUT /_rules``, ``POST /_reset``,
``GET /_requests``, ``GET /_embeddings_count``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Required, TypedDict

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_DIMS = 1536
FALLBACK_CONTENT = "OK"
LAST_USER_PLACEHOLDER = "{last_user}"
FAKE_API_KEY = "sk-fake-openai-key-for-tests"

# Each word feeds a few signed buckets so that unrelated words rarely cancel out.
_BUCKETS_PER_TOKEN = 3
_WORD_RE = re.compile(r"\w+")
_STREAM_PIECE_RE = re.compile(r"\s*\S+\s*|\s+")


class ToolCallSpec(TypedDict, total=False):
    """A tool call the fake model should make."""

    name: Required[str]
    arguments: dict[str, Any]
    raw_arguments: str


class RuleWhen(TypedDict, total=False):
    """Conditions of a rule; all given ones must hold."""

    tool: str
    contains: str
    any_contains: str
    last_role: str
    model: str


class RuleThen(TypedDict, total=False):
    """What the fake model answers when a rule matches."""

    content: str
    tool_calls: list[ToolCallSpec]
    error: int
    retry_after: float
    hang: float


class Rule(TypedDict, total=False):
    """One scripted response; see the module docstring."""

    when: RuleWhen
    then: Required[RuleThen]
    times: int


class LoggedRequest(TypedDict):
    """What the fake remembers about one chat-completion request."""

    model: str | None
    messages: list[Any]
    tools: list[str]
    stream: bool
    tool_choice: Any
    prompt_tokens: int


_RULE_KEYS = frozenset({"when", "then", "times"})
_WHEN_KEYS = frozenset(RuleWhen.__annotations__)
_THEN_KEYS = frozenset(RuleThen.__annotations__)
_TOOL_CALL_KEYS = frozenset(ToolCallSpec.__annotations__)


@dataclass
class _CompiledRule:
    """A validated rule; ``remaining`` is None for rules without ``times``."""

    when: dict[str, str]
    content: str | None
    tool_calls: list[tuple[str, dict[str, Any] | str]]
    error: int | None
    remaining: int | None
    retry_after: float | None = None
    hang: float = 0.0


def _check_keys(where: str, value: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Reject unknown keys: a typo in a rule would otherwise silently match everything."""
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _compile_rule(index: int, rule: object) -> _CompiledRule:
    where = f"rule {index}"
    if not isinstance(rule, Mapping):
        raise ValueError(f"{where}: must be an object, got {type(rule).__name__}")
    _check_keys(where, rule, _RULE_KEYS)

    when = rule.get("when", {})
    if not isinstance(when, Mapping):
        raise ValueError(f"{where}.when: must be an object")
    _check_keys(f"{where}.when", when, _WHEN_KEYS)
    for key, condition in when.items():
        if not isinstance(condition, str):
            raise ValueError(f"{where}.when.{key}: must be a string")

    then = rule.get("then")
    if not isinstance(then, Mapping) or not then:
        raise ValueError(f"{where}.then: must be a non-empty object")
    _check_keys(f"{where}.then", then, _THEN_KEYS)

    error = then.get("error")
    if error is not None:
        if not _is_int(error) or not 400 <= error <= 599:
            raise ValueError(f"{where}.then.error: must be an HTTP status 400-599")
        if set(then) - {"error", "retry_after", "hang"}:
            raise ValueError(f"{where}.then: 'error' cannot be combined with a reply")
    retry_after = then.get("retry_after")
    if retry_after is not None:
        if error is None:
            raise ValueError(f"{where}.then.retry_after: only goes with 'error'")
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool) or retry_after < 0:
            raise ValueError(f"{where}.then.retry_after: must be a number of seconds >= 0")
    hang = then.get("hang", 0)
    if not isinstance(hang, int | float) or isinstance(hang, bool) or hang < 0:
        raise ValueError(f"{where}.then.hang: must be a number of seconds >= 0")

    content = then.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError(f"{where}.then.content: must be a string")

    tool_calls: list[tuple[str, dict[str, Any] | str]] = []
    raw_calls = then.get("tool_calls")
    if raw_calls is not None:
        if not isinstance(raw_calls, list) or not raw_calls:
            raise ValueError(f"{where}.then.tool_calls: must be a non-empty list")
        for j, call in enumerate(raw_calls):
            call_where = f"{where}.then.tool_calls[{j}]"
            if not isinstance(call, Mapping):
                raise ValueError(f"{call_where}: must be an object")
            _check_keys(call_where, call, _TOOL_CALL_KEYS)
            name = call.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{call_where}.name: must be a non-empty string")
            if "raw_arguments" in call:
                if "arguments" in call or not isinstance(call["raw_arguments"], str):
                    raise ValueError(f"{call_where}.raw_arguments: must be a string, instead of 'arguments'")
                tool_calls.append((name, call["raw_arguments"]))
                continue
            arguments = call.get("arguments", {})
            if not isinstance(arguments, Mapping):
                raise ValueError(f"{call_where}.arguments: must be an object")
            tool_calls.append((name, dict(arguments)))

    times = rule.get("times")
    if times is not None and (not _is_int(times) or times < 1):
        raise ValueError(f"{where}.times: must be a positive integer")

    return _CompiledRule(
        when=dict(when),
        content=content,
        tool_calls=tool_calls,
        error=error,
        remaining=times,
        retry_after=retry_after,
        hang=float(hang),
    )


def flatten_content(content: object) -> str:
    """Text of a message content: a string, or a list of content parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    return ""


def _tool_name(tool: object) -> str | None:
    if not isinstance(tool, Mapping):
        return None
    for holder in (tool.get("function"), tool.get("custom"), tool):
        if isinstance(holder, Mapping) and isinstance(holder.get("name"), str):
            return str(holder["name"])
    return None


@dataclass(frozen=True)
class _ChatRequest:
    """The parts of a chat-completion request that rules and the log look at."""

    model: str | None
    messages: list[Any]
    tool_names: list[str]
    texts: list[str]
    last_user: str | None
    last_role: str | None
    stream: bool
    include_usage: bool
    tool_choice: Any
    prompt_tokens: int

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> _ChatRequest:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
            raise _BadRequest("'messages' must be a list of objects")
        tools = body.get("tools") or []
        if not isinstance(tools, list):
            raise _BadRequest("'tools' must be a list")
        stream_options = body.get("stream_options") or {}
        texts = [flatten_content(m.get("content")) for m in messages]
        last_user = next(
            (text for m, text in zip(reversed(messages), reversed(texts), strict=True) if m.get("role") == "user"),
            None,
        )
        model = body.get("model")
        return cls(
            model=model if isinstance(model, str) else None,
            messages=messages,
            tool_names=[name for name in map(_tool_name, tools) if name is not None],
            texts=texts,
            last_user=last_user,
            last_role=messages[-1].get("role") if messages else None,
            stream=bool(body.get("stream")),
            include_usage=isinstance(stream_options, Mapping) and bool(stream_options.get("include_usage")),
            tool_choice=body.get("tool_choice"),
            prompt_tokens=estimate_prompt_tokens(texts, tools),
        )

    def matches(self, when: Mapping[str, str]) -> bool:
        for key, expected in when.items():
            if key == "tool":
                ok = expected in self.tool_names
            elif key == "contains":
                ok = self.last_user is not None and expected in self.last_user
            elif key == "any_contains":
                ok = any(expected in text for text in self.texts)
            elif key == "last_role":
                ok = self.last_role == expected
            else:
                ok = self.model == expected
            if not ok:
                return False
        return True


def estimate_prompt_tokens(message_texts: Iterable[str], tools: Sequence[Any]) -> int:
    """Rough prompt size: characters of all message contents plus the tools' JSON, over 4.

    Four characters per token is OpenAI's rule of thumb for English; it is good
    enough for benchmarks that compare prompt growth, and needs no tokenizer.
    """
    chars = sum(len(text) for text in message_texts)
    if tools:
        chars += len(json.dumps(tools))
    return chars // 4


# The tools the memory graph's extractors offer (trustcall adds PatchDoc for updates and
# PatchFunctionErrors for repairs); the chat agent offers none of them.
MEMORY_TOOLS = ("Memory", "UserProfile", "PatchDoc", "PatchFunctionErrors")
_PATCH = {"op": "replace", "path": "/content", "value": "{last_user}"}
MISBEHAVIOURS: dict[str, RuleThen] = {
    # trustcall answers this with "Fix the validation error" turns, which its attempts do not count.
    "patch_without_id": {
        "tool_calls": [{"name": "PatchDoc", "arguments": {"planned_edits": "update", "patches": [_PATCH]}}]
    },
    "string_patches": {
        "tool_calls": [
            {
                "name": "PatchDoc",
                "arguments": {"json_doc_id": "profile", "planned_edits": "update", "patches": "set name to Bob"},
            }
        ]
    },
    "invalid_json": {"tool_calls": [{"name": "Memory", "raw_arguments": '{"content": "User likes'}]},
    "unknown_tool": {"tool_calls": [{"name": "SaveEverything", "arguments": {"everything": "{last_user}"}}]},
    "server_error": {"error": 500},
    "rate_limited": {"error": 429, "retry_after": 1},
    "hang": {"hang": 5},
}


def misbehaving_rules(mode: str, *, times: int | None = None) -> list[Rule]:
    """Rules making every extraction call of the memory graph misbehave as ``MISBEHAVIOURS[mode]``.

    ``times`` limits each rule to that many uses (then the fallback answer, ``"OK"``).
    """
    if mode not in MISBEHAVIOURS:
        raise ValueError(f"unknown misbehaviour {mode!r}; choose one of {sorted(MISBEHAVIOURS)}")
    rules: list[Rule] = []
    for tool in MEMORY_TOOLS:
        rule: Rule = {"when": {"tool": tool}, "then": MISBEHAVIOURS[mode]}
        if times is not None:
            rule["times"] = times
        rules.append(rule)
    return rules


class _State:
    """Rules, request log and counters, shared by the server thread and test code."""

    def __init__(self, dims: int) -> None:
        if dims < 1:
            raise ValueError("dims must be positive")
        self.dims = dims
        self._lock = threading.Lock()
        self._rules: list[_CompiledRule] = []
        self._requests: list[LoggedRequest] = []
        self._embedded = 0

    def set_rules(self, rules: object) -> None:
        if not isinstance(rules, list | tuple):
            raise ValueError("rules must be a list")
        compiled = [_compile_rule(i, rule) for i, rule in enumerate(rules)]
        with self._lock:
            self._rules = compiled

    def reset(self) -> None:
        with self._lock:
            self._rules = []
            self._requests = []
            self._embedded = 0

    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def embeddings_count(self) -> int:
        with self._lock:
            return self._embedded

    def record_chat(self, request: _ChatRequest) -> _CompiledRule | None:
        """Log the request and consume the first matching rule, atomically."""
        entry: LoggedRequest = {
            "model": request.model,
            "messages": copy.deepcopy(request.messages),
            "tools": list(request.tool_names),
            "stream": request.stream,
            "tool_choice": copy.deepcopy(request.tool_choice),
            "prompt_tokens": request.prompt_tokens,
        }
        with self._lock:
            self._requests.append(entry)
            for rule in self._rules:
                if rule.remaining == 0 or not request.matches(rule.when):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule
        return None

    def record_embeddings(self, count: int) -> None:
        with self._lock:
            self._embedded += count


class _BadRequest(Exception):
    """A malformed request; answered with an OpenAI-style 400 error."""


def _error_response(status: int, message: str, kind: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise _BadRequest(f"invalid JSON body: {exc}") from exc


async def _json_object(request: Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _BadRequest("request body must be a JSON object")
    return body


def _fill_placeholder(value: Any, last_user: str) -> Any:
    if isinstance(value, str):
        return value.replace(LAST_USER_PLACEHOLDER, last_user)
    if isinstance(value, list):
        return [_fill_placeholder(item, last_user) for item in value]
    if isinstance(value, dict):
        return {key: _fill_placeholder(item, last_user) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class _Reply:
    content: str | None
    tool_calls: list[dict[str, Any]]

    @classmethod
    def build(cls, rule: _CompiledRule | None, request: _ChatRequest) -> _Reply:
        if rule is None or (rule.content is None and not rule.tool_calls):
            return cls(content=FALLBACK_CONTENT, tool_calls=[])
        last_user = request.last_user or ""
        content = rule.content
        if content is not None:
            content = content.replace(LAST_USER_PLACEHOLDER, last_user)
        tool_calls = [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments
                    if isinstance(arguments, str)
                    else json.dumps(_fill_placeholder(arguments, last_user)),
                },
            }
            for name, arguments in rule.tool_calls
        ]
        return cls(content=content, tool_calls=tool_calls)

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def usage(self, prompt_tokens: int) -> dict[str, int]:
        chars = len(self.content or "") + sum(len(call["function"]["arguments"]) for call in self.tool_calls)
        completion_tokens = max(1, chars // 4)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }


def _completion_body(request: _ChatRequest, reply: _Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model or "fake",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": reply.usage(request.prompt_tokens),
    }


def _stream_chunks(request: _ChatRequest, reply: _Reply) -> list[dict[str, Any]]:
    """The SSE payloads for a streamed reply, split so clients must really accumulate."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model or "fake",
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        payload = {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if request.include_usage:
            payload["usage"] = None
        return payload

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _STREAM_PIECE_RE.findall(reply.content or "")]
    for index, call in enumerate(reply.tool_calls):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        head = {"name": call["function"]["name"], "arguments": arguments[:half]}
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function", "function": head}]}))
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}))
    chunks.append(chunk({}, reply.finish_reason))
    if request.include_usage:
        chunks.append({**base, "choices": [], "usage": reply.usage(request.prompt_tokens)})
    return chunks


def embed_text(text: str, dims: int = DEFAULT_DIMS) -> list[float]:
    """The fake embedding of ``text``: a hashed, signed bag of lowercase words, L2-normalised.

    Texts sharing words get a higher cosine similarity, which is enough for
    semantic-search tests to rank plausibly without a real model.
    """
    return _embed_tokens(_WORD_RE.findall(text.lower()), dims)


def _embed_tokens(tokens: Sequence[str], dims: int) -> list[float]:
    vector = [0.0] * dims
    # An empty text still gets a unit vector, since stores may divide by the norm.
    for token in tokens or ["<empty>"]:
        digest = hashlib.md5(token.encode(), usedforsecurity=False).digest()
        for k in range(_BUCKETS_PER_TOKEN):
            bucket = int.from_bytes(digest[4 * k : 4 * k + 4], "little") % dims
            vector[bucket] += 1.0 if digest[12 + k] & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        vector[0] = norm = 1.0
    return [value / norm for value in vector]


def _embedding_inputs(raw: object) -> list[tuple[list[str], int]]:
    """Each input as (tokens to hash, token count for usage); accepts every OpenAI input shape."""

    def is_token_list(value: object) -> bool:
        return isinstance(value, list) and bool(value) and all(_is_int(t) for t in value)

    if isinstance(raw, str):
        items: list[object] = [raw]
    elif is_token_list(raw):
        items = [raw]
    elif isinstance(raw, list) and raw:
        items = list(raw)
    else:
        raise _BadRequest("'input' must be a string, a list of strings or token lists")
    inputs: list[tuple[list[str], int]] = []
    for item in items:
        if isinstance(item, str):
            inputs.append((_WORD_RE.findall(item.lower()), len(item) // 4))
        elif isinstance(item, list) and is_token_list(item):
            inputs.append(([str(token) for token in item], len(item)))
        else:
            raise _BadRequest("'input' items must be strings or non-empty lists of integers")
    return inputs


def _encode_embedding(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


def _build_app(state: _State) -> Starlette:
    async def chat_completions(http_request: Request) -> Response:
        request = _ChatRequest.parse(await _json_object(http_request))
        rule = state.record_chat(request)
        if rule is not None and rule.hang:
            await asyncio.sleep(rule.hang)
        if rule is not None and rule.error is not None:
            response = _error_response(rule.error, f"scripted failure ({rule.error})", "server_error")
            if rule.retry_after is not None:
                response.headers["retry-after"] = f"{rule.retry_after:g}"
            return response
        reply = _Reply.build(rule, request)
        if not request.stream:
            return JSONResponse(_completion_body(request, reply))
        chunks = _stream_chunks(request, reply)

        async def events() -> AsyncIterator[str]:
            for payload in chunks:
                yield f"data: {json.dumps(payload)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def embeddings(http_request: Request) -> Response:
        body = await _json_object(http_request)
        inputs = _embedding_inputs(body.get("input"))
        dims = body.get("dimensions")
        if dims is None:
            dims = state.dims
        if not _is_int(dims) or dims < 1:
            raise _BadRequest("'dimensions' must be a positive integer")
        encoding_format = body.get("encoding_format") or "float"
        if encoding_format not in ("float", "base64"):
            raise _BadRequest("'encoding_format' must be 'float' or 'base64'")
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode_embedding(_embed_tokens(tokens, dims), encoding_format),
            }
            for index, (tokens, _) in enumerate(inputs)
        ]
        state.record_embeddings(len(inputs))
        used = sum(count for _, count in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model") or "fake-embedding",
                "usage": {"prompt_tokens": used, "total_tokens": used},
            }
        )

    async def put_rules(http_request: Request) -> Response:
        rules = await _json_body(http_request)
        try:
            state.set_rules(rules)
        except ValueError as exc:
            raise _BadRequest(str(exc)) from exc
        return JSONResponse({"rules": len(rules)})

    async def reset(_: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def get_requests(_: Request) -> Response:
        return JSONResponse(state.requests())

    async def embeddings_count(_: Request) -> Response:
        return JSONResponse({"count": state.embeddings_count()})

    async def bad_request(_: Request, exc: Exception) -> Response:
        return _error_response(400, str(exc), "invalid_request_error")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/_rules", put_rules, methods=["PUT"]),
            Route("/_reset", reset, methods=["POST"]),
            Route("/_requests", get_requests, methods=["GET"]),
            Route("/_embeddings_count", embeddings_count, methods=["GET"]),
        ],
        exception_handlers={_BadRequest: bad_request},
    )


def _bind(host: str, port: int) -> socket.socket:
    """Bind before serving so the port is known (and ours) even when ``port`` is 0."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _root_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url.removesuffix("/v1")


class FakeOpenAIClient:
    """Controls a fake server over HTTP, e.g. one started by another process."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        """``base_url`` may be the server root or its ``/v1`` URL."""
        self.url = _root_url(base_url)
        self._timeout = timeout

    def _call(self, method: str, path: str, body: object = None) -> Any:
        # trust_env=False: a proxy configured for package registries must not see loopback calls.
        with httpx.Client(base_url=self.url, timeout=self._timeout, trust_env=False) as client:
            response = client.request(method, path, json=body)
        if response.status_code == 400:
            raise ValueError(response.json()["error"]["message"])
        response.raise_for_status()
        return response.json()

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Replace all rules; raises ValueError if one is malformed."""
        self._call("PUT", "/_rules", list(rules))

    def reset(self) -> None:
        """Forget rules, logged requests and the embeddings count."""
        self._call("POST", "/_reset")

    def requests(self) -> list[LoggedRequest]:
        """Chat-completion requests received so far, oldest first."""
        result: list[LoggedRequest] = self._call("GET", "/_requests")
        return result

    def embeddings_count(self) -> int:
        """How many texts (or token lists) have been embedded."""
        return int(self._call("GET", "/_embeddings_count")["count"])


class FakeOpenAI:
    """The fake server in a background thread of this process; a context manager."""

    def __init__(
        self,
        rules: Sequence[Rule] | None = None,
        *,
        dims: int = DEFAULT_DIMS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Serve on ``host:port`` (0: a free port) with embeddings of ``dims`` by default."""
        self._state = _State(dims)
        if rules is not None:
            self._state.set_rules(list(rules))
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not running")
        return self._port

    @property
    def url(self) -> str:
        """Server root, where the control endpoints live."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to use as ``OPENAI_BASE_URL``."""
        return f"{self.url}/v1"

    def env(self) -> dict[str, str]:
        """Environment variables pointing an OpenAI client at this server."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": FAKE_API_KEY}

    def start(self, timeout: float = 10.0) -> FakeOpenAI:
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already running")
        sock = _bind(self._host, self._requested_port)
        config = uvicorn.Config(
            _build_app(self._state),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout)
                sock.close()
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock
        self._port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._port = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Replace all rules; raises ValueError if one is malformed."""
        self._state.set_rules(list(rules))

    def reset(self) -> None:
        """Forget rules, logged requests and the embeddings count."""
        self._state.reset()

    def requests(self) -> list[LoggedRequest]:
        """Chat-completion requests received so far, oldest first."""
        return self._state.requests()

    def embeddings_count(self) -> int:
        """How many texts (or token lists) have been embedded."""
        return self._state.embeddings_count()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_openai",
        description="Scripted OpenAI-compatible server for offline runs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--dims", type=int, default=DEFAULT_DIMS, help="default embedding size")
    parser.add_argument("--rules", type=Path, help="JSON file holding a list of rules")
    args = parser.parse_args(argv)

    state = _State(args.dims)
    if args.rules is not None:
        state.set_rules(json.loads(args.rules.read_text()))
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"OPENAI_BASE_URL=http://{args.host}:{port}/v1", flush=True)
    uvicorn.Server(uvicorn.Config(_build_app(state), lifespan="off")).run(sockets=[sock])


if __name__ == "__main__":
    main()
