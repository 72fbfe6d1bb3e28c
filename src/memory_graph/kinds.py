"""Each memory type as a ``MemoryCollection``: schemas, namespace, and stored record shape.

Every record that the agent searches keeps its text in ``content`` (the indexed field), so
one semantic index serves all types; structure lives beside it (``triple``, ``episode``,
``data``). Documents (profile, custom types in patch mode) are stored unindexed.
"""

import json
from typing import Any

from pydantic import BaseModel

from memory.records import (
    PROFILE_KEY,
    Episode,
    Memory,
    Triple,
    UserProfile,
    custom_namespace,
    episode_namespace,
    memory_namespace,
    memory_record,
    memory_text,
    profile_namespace,
)
from memory.write_guard import third_person
from memory_graph.consolidation import MemoryCollection
from memory_graph.memory_types import CustomType, EpisodicSettings, ProfileSettings, SemanticSettings


def _function_schema(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A configured JSON schema as a tool the extractor can call."""
    return {"name": name, "description": schema.get("description", f"A {name} record."), "parameters": schema}


def _dump(content: BaseModel) -> dict[str, Any]:
    return content.model_dump(mode="json")


def render_data(data: dict[str, Any]) -> str:
    """Structured data as one line of text, for the index and the prompt."""
    return "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in data.items() if v is not None)


def semantic(user_id: str, settings: SemanticSettings) -> MemoryCollection:
    """Facts, free text or triples, in the namespace the agent's hot-path tools also use."""

    def from_record(value: dict[str, Any]) -> tuple[str, Any]:
        importance = value.get("importance", 0.5)
        if "triple" in value:
            return "Triple", Triple(**value["triple"], importance=importance)
        return "Memory", Memory(content=memory_text(value), importance=importance)

    def to_record(content: BaseModel) -> dict[str, Any]:
        # Facts are about the user, whatever person the model wrote them in.
        if isinstance(content, Triple):
            if content.subject.strip().lower() in {"i", "me"}:
                content = content.model_copy(update={"subject": "User"})
            triple = content.model_dump(exclude={"importance"})
            return memory_record(third_person(content.text()), triple=triple, importance=content.importance)
        memory = Memory.model_validate(content.model_dump())
        return memory_record(third_person(memory.content), importance=memory.importance)

    schemas: list[Any] = [Triple, Memory] if settings.format == "triple" else [Memory]
    return MemoryCollection(memory_namespace(user_id), schemas, settings.instructions, to_record, from_record)


def profile(user_id: str, settings: ProfileSettings) -> MemoryCollection:
    """One profile document per user, whose fields are the union of every schema that wrote it.

    The extractor is shown (and may change) only the fields of this assistant's schema, so
    the fields another assistant's schema keeps in the same document are left as they are.
    """
    schema: Any = UserProfile
    name = "UserProfile"
    fields = set(UserProfile.model_fields)
    if settings.json_schema is not None:
        name = str(settings.json_schema.get("title") or "UserProfile")
        schema = _function_schema(name, settings.json_schema)
        fields = set(settings.json_schema["properties"])
    return MemoryCollection(
        profile_namespace(user_id),
        [schema],
        settings.instructions,
        # Only the fields the extraction set: defaults would overwrite what other schemas stored.
        to_record=lambda content: content.model_dump(mode="json", exclude_unset=True),
        from_record=lambda value: (name, {k: v for k, v in value.items() if k in fields}),
        document_key=PROFILE_KEY,
        shared_document=True,
    )


def episodic(user_id: str, settings: EpisodicSettings) -> MemoryCollection:
    """Episodes, indexed by their situation so that a similar situation finds them."""
    return MemoryCollection(
        episode_namespace(user_id),
        [Episode],
        settings.instructions,
        to_record=lambda content: memory_record(str(content.model_dump()["observation"]), episode=_dump(content)),
        from_record=lambda value: ("Episode", Episode(**value["episode"])),
        deletes=False,
    )


def custom(user_id: str, custom_type: CustomType) -> MemoryCollection:
    """Records of a configured type: a collection, or one document in patch mode."""

    def to_record(content: BaseModel) -> dict[str, Any]:
        data = _dump(content)
        return memory_record(render_data(data), data=data)

    return MemoryCollection(
        custom_namespace(user_id, custom_type.name),
        [_function_schema(custom_type.name, custom_type.json_schema)],
        custom_type.instructions,
        to_record=to_record,
        from_record=lambda value: (custom_type.name, value.get("data", {})),
        document_key=custom_type.name if custom_type.mode == "patch" else None,
    )
