"""The memory record format and namespace layout shared by both graphs.

Hot-path memories (written by langmem's manage tool in the agent) and background
memories (written by the memory graph) live in one namespace with one value shape,
``{"content": "<text>"}``, so each side sees and consolidates what the other wrote.
The store's semantic index covers the ``content`` field only.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

MEMORY_FIELD = "content"
# When the memory was stated (ISO 8601): its source message's time, or the time an imported
# conversation gives; apart from the store's created_at, which is when it was written.
STATED_AT_FIELD = "stated_at"
# Where a message carries its time: ``additional_kwargs["timestamp"]`` (ISO 8601). An SDK caller
# sets it with an extra key on the message, e.g. {"role": "user", "content": ..., "timestamp": ...}.
MESSAGE_TIME_FIELD = "timestamp"
MAX_MEMORY_CHARS = 2000
PROFILE_KEY = "profile"


def memory_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of one user's memories (hot path and background alike)."""
    return ("memories", user_id)


def profile_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of one user's profile document (a single item, key ``profile``)."""
    return ("profile", user_id)


def episode_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of one user's episodes (interactions that went well)."""
    return ("episodes", user_id)


def instructions_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of the agent instructions learned for one user (key: assistant id or ``default``)."""
    return ("instructions", user_id)


def custom_namespace(user_id: str, type_name: str) -> tuple[str, ...]:
    """Namespace of one user's records of a custom memory type."""
    return ("custom", user_id, type_name)


def history_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of the change history of all of one user's memories."""
    return ("memory_history", user_id)


def cursor_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of the per-conversation "processed up to" cursors of one user."""
    return ("memory_cursors", user_id)


def failure_namespace(user_id: str) -> tuple[str, ...]:
    """Namespace of the batches of messages the memory graph failed to process, per user."""
    return ("memory_failures", user_id)


def memory_record(text: str, **extra: Any) -> dict[str, Any]:
    """The stored value of a memory: its text (indexed) plus optional structure."""
    return {MEMORY_FIELD: text, **extra}


def parse_time(raw: object) -> datetime | None:
    """An ISO 8601 time (a naive one is read as UTC), or None when ``raw`` is not one."""
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stated_at(value: Mapping[str, Any]) -> datetime | None:
    """When a stored memory was stated, if it says."""
    return parse_time(value.get(STATED_AT_FIELD))


def message_time(message: Any) -> datetime | None:
    """The time a chat message carries in ``additional_kwargs["timestamp"]``, if any."""
    extra = getattr(message, "additional_kwargs", None) or {}
    return parse_time(extra.get(MESSAGE_TIME_FIELD))


def memory_text(value: Mapping[str, Any]) -> str:
    """The text of a stored memory, whichever writer produced it.

    Accepts the shared shape ``{"content": "..."}`` and langmem's store-manager shape
    ``{"kind": "Memory", "content": {"content": "..."}}``, so a namespace holding both
    never breaks a reader (langmem 0.0.30 raises ``KeyError: 'kind'`` there).
    """
    content = value.get(MEMORY_FIELD)
    if isinstance(content, Mapping):
        content = content.get(MEMORY_FIELD, content)
    return content if isinstance(content, str) else str(content)


_IMPORTANCE = Field(
    default=0.5, ge=0, le=1, description="How much this matters for future conversations, 0 (trivia) to 1 (vital)."
)


# No example values in these descriptions: small models copy them as facts (a user who never
# mentioned French got "User prefers answers in French.", everyone got a timezone example).
class Memory(BaseModel):
    """A fact about the user or the conversation worth remembering across conversations."""

    content: str = Field(
        description="The fact as one short, self-contained statement about the user, in the third person, "
        "in the user's own terms; never a guess."
    )
    importance: float = _IMPORTANCE


class Triple(BaseModel):
    """A fact as subject / predicate / object, taken from what the user said."""

    subject: str = Field(
        description="Who or what the fact is about: the word User for the user, else the person or thing."
    )
    predicate: str = Field(description="The relation between subject and object, as a short verb phrase.")
    object: str = Field(description="The value the fact gives the subject, in the user's words.")
    context: str | None = Field(default=None, description="When or under which conditions it holds.")
    importance: float = _IMPORTANCE

    def text(self) -> str:
        """The triple as the sentence that is indexed and shown to the agent."""
        sentence = f"{self.subject} {self.predicate} {self.object}"
        return f"{sentence} ({self.context})" if self.context else sentence


class Episode(BaseModel):
    """An interaction that went well, kept as an example for similar situations."""

    observation: str = Field(description="The situation and what the user needed.")
    thoughts: str = Field(description="How the assistant reasoned about it.")
    action: str = Field(description="What the assistant did.")
    result: str = Field(description="How it turned out, and why it worked.")


class UserProfile(BaseModel):
    """What the user said about themselves. Leave a field empty unless the user stated it."""

    name: str | None = Field(default=None, description="The user's name, as they introduced themselves.")
    preferred_name: str | None = Field(default=None, description="The name the user asked to be called.")
    language: str | None = Field(default=None, description="The language the user asked to be answered in.")
    timezone: str | None = Field(default=None, description="The user's timezone as an IANA name, if they gave one.")
    response_style: str | None = Field(
        default=None, description="How the user asked answers to be written, in their words."
    )
    interests: list[str] = Field(
        default_factory=list, description="Topics the user said they enjoy or care about (not their job or diet)."
    )
