"""Bounds on what a client may send, and the rule that keeps each user in their own namespaces.

Shared by the store API's auth handlers and the memory routes (whose parameters and models
declare these bounds, so they are in the OpenAPI schema), so both surfaces reject the same
input. The memory size and query length are the ones the agent's tools already enforce, so a
memory accepted on one surface fits on all.

Every user-owned namespace has the layout ``("<kind>", user_id, ...)`` (memories, profile,
cursors, and any kind added later): the confinement rule looks only at the second label, so
new kinds are private without further code.
"""

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agent.tools import MAX_QUERY_CHARS
from memory.records import MAX_MEMORY_CHARS, MEMORY_FIELD

MAX_NAMESPACE_DEPTH = 4
MAX_LABEL_CHARS = 128
MAX_KEY_CHARS = 256
# A memory is at most MAX_MEMORY_CHARS of text; this leaves room for the profile document
# and for structured fields next to the text, while keeping one item far from megabytes.
MAX_VALUE_BYTES = 16_384
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000
MEMORY_KIND = "memories"

# No "." (the store API joins namespace labels with it), no "*" (a wildcard in namespace
# listings), no whitespace or control characters. User ids are labels too.
_LABEL = re.compile(r"[A-Za-z0-9_\-:@|+]+")
LABEL_CHARACTERS = "letters, digits and _ - : @ | +"
_KEY_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


class LimitError(ValueError):
    """A request is outside a bound or touches a namespace it may not; maps to an HTTP status."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


def check_label(label: object, what: str = "Namespace label") -> str:
    """A label (namespace element or user id) that is safe in every store API call."""
    if not isinstance(label, str) or not label:
        raise LimitError(f"{what} must be a non-empty string, got {label!r}.")
    if len(label) > MAX_LABEL_CHARS:
        raise LimitError(f"{what} is {len(label)} characters long; at most {MAX_LABEL_CHARS} are allowed.")
    if not _LABEL.fullmatch(label):
        raise LimitError(f"{what} {label!r} may only contain {LABEL_CHARACTERS}.")
    return label


def check_namespace(namespace: object, what: str = "Namespace") -> tuple[str, ...]:
    """A namespace (or namespace prefix) of 1 to MAX_NAMESPACE_DEPTH valid labels."""
    if not isinstance(namespace, Sequence) or isinstance(namespace, str):
        raise LimitError(f"{what} must be a list of labels.")
    labels = tuple(namespace)
    if not labels:
        raise LimitError(f"{what} must not be empty.")
    if len(labels) > MAX_NAMESPACE_DEPTH:
        raise LimitError(f"{what} has {len(labels)} labels; at most {MAX_NAMESPACE_DEPTH} are allowed.")
    for label in labels:
        check_label(label, f"{what} label")
    return labels


def confine(namespace: object, user_id: str, what: str = "Namespace") -> tuple[str, ...]:
    """The namespace, if it is one of ``user_id``'s: ``("<kind>", user_id, ...)``.

    Anything shorter than two labels would reach across users (``("memories",)`` is the
    prefix of everyone's memories), so it is refused like another user's namespace.
    """
    labels = check_namespace(namespace, what)
    if len(labels) < 2 or labels[1] != user_id:
        raise LimitError(
            f"{what} {list(labels)!r} is not yours: use ['<kind>', '{user_id}', ...], "
            "where the second label is your user id.",
            status_code=403,
        )
    return labels


def check_key(key: object) -> str:
    """An item key of bounded length without control characters."""
    if not isinstance(key, str) or not key:
        raise LimitError("Key must be a non-empty string.")
    if len(key) > MAX_KEY_CHARS:
        raise LimitError(f"Key is {len(key)} characters long; at most {MAX_KEY_CHARS} are allowed.")
    if _KEY_FORBIDDEN.search(key):
        raise LimitError("Key must not contain control characters.")
    return key


def check_value(namespace: Sequence[str], value: object) -> Mapping[str, Any]:
    """A stored value: a JSON object of bounded size; a memory also needs bounded text."""
    if not isinstance(value, Mapping):
        raise LimitError("Value must be a JSON object.")
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    if size > MAX_VALUE_BYTES:
        raise LimitError(f"Value is {size} bytes as JSON; at most {MAX_VALUE_BYTES} are allowed.", 413)
    if namespace and namespace[0] == MEMORY_KIND:
        check_memory_text(value.get(MEMORY_FIELD))
    return value


def check_memory_text(text: object) -> str:
    """The text of one memory: non-empty, at most MAX_MEMORY_CHARS (the agent's tool limit)."""
    if not isinstance(text, str) or not text.strip():
        raise LimitError(f"A memory needs its text as a non-empty string in {MEMORY_FIELD!r}.")
    if len(text) > MAX_MEMORY_CHARS:
        raise LimitError(
            f"This memory is {len(text)} characters; the limit is {MAX_MEMORY_CHARS}. "
            "Save a shorter statement, or split it into several memories.",
            413,
        )
    return text


def check_query(query: object) -> str | None:
    """A semantic search query of at most MAX_QUERY_CHARS (the agent's tool limit)."""
    if query is None:
        return None
    if not isinstance(query, str):
        raise LimitError("Query must be a string.")
    if len(query) > MAX_QUERY_CHARS:
        raise LimitError(f"The query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS}).")
    return query


def check_page(limit: object, offset: object, max_limit: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    """A page of at most ``max_limit`` results starting at most MAX_OFFSET in."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise LimitError(f"`limit` must be an integer between 1 and {max_limit}, got {limit!r}.")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise LimitError(f"`offset` must be an integer between 0 and {MAX_OFFSET}, got {offset!r}.")
    return limit, offset
