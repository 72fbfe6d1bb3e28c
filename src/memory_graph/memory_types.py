"""Which kinds of long-term memory an assistant keeps, and how each is configured.

One ``MemorySettings`` value is part of both graphs' context: the agent uses it to recall,
and passes it to the memory graph it schedules, so one assistant's configuration drives
both sides and two assistants with different settings on the same user do not interfere.
"""

import re
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from memory_graph import prompts

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_RESERVED_NAMES = {"profile", "semantic", "episodic", "procedural", "memory", "memories"}


def check_json_schema(schema: dict[str, Any], what: str) -> dict[str, Any]:
    """Reject a schema the extractor could not use, naming what is wrong."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ValueError(f"{what} is not a valid JSON schema: {error.message}") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise ValueError(
            f'{what} must be an object schema with properties: {{"type": "object", "properties": {{...}}}}'
        )
    return schema


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileSettings(_Settings):
    """One structured document per user, updated in place and always in the agent's prompt."""

    enabled: bool = Field(default=True, description="Maintain the user's profile.")
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON schema of the profile (an object schema). Default: name, preferred name, "
        "language, timezone, response style, interests.",
    )
    instructions: str = Field(default=prompts.PROFILE_INSTRUCTIONS, description="How to maintain the profile.")

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if schema is None else check_json_schema(schema, "memory.profile.json_schema")


class SemanticSettings(_Settings):
    """A collection of facts, consolidated on every run."""

    enabled: bool = Field(default=True, description="Extract facts in the background.")
    format: Literal["text", "triple"] = Field(
        default="text",
        description="'text': one statement per fact; 'triple': subject / predicate / object / context.",
    )
    instructions: str = Field(default=prompts.EXTRACTION_INSTRUCTIONS, description="What facts to keep and how.")


class EpisodicSettings(_Settings):
    """Episodes of interactions that went well, recalled as examples in similar situations."""

    enabled: bool = Field(default=False, description="Extract episodes and recall them as examples.")
    instructions: str = Field(default=prompts.EPISODE_INSTRUCTIONS, description="Which episodes to keep.")
    recall_limit: int = Field(default=2, ge=0, le=10, description="Episodes shown as examples per turn.")


class ProceduralSettings(_Settings):
    """The agent's own instructions, refined from feedback and used as its system prompt."""

    enabled: bool = Field(default=False, description="Learn the agent's instructions from feedback.")
    per_assistant: bool = Field(
        default=True, description="Keep learned instructions per user and assistant (else per user)."
    )
    instructions: str = Field(default=prompts.PROCEDURAL_INSTRUCTIONS, description="When to change them.")

    def instructions_key(self, assistant_id: str | None) -> str:
        """Key of the learned instructions in ``("instructions", user)``: the assistant's, or shared."""
        return (assistant_id or "default") if self.per_assistant else "default"


class CustomType(_Settings):
    """A memory type defined by configuration: a JSON schema, instructions and a mode."""

    name: str = Field(description="Lowercase identifier, e.g. 'recipes'; also names its namespace.")
    json_schema: dict[str, Any] = Field(description="JSON schema of one record (an object schema).")
    instructions: str = Field(default=prompts.CUSTOM_TYPE_INSTRUCTIONS, description="What to extract.")
    mode: Literal["insert", "patch"] = Field(
        default="insert",
        description="'insert': a collection of records; 'patch': one document per user, updated in place.",
    )
    recall_limit: int = Field(default=3, ge=0, le=20, description="Records shown in the agent's prompt.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _TYPE_NAME.match(name) or name in _RESERVED_NAMES:
            raise ValueError(
                f"custom memory type name {name!r} must match {_TYPE_NAME.pattern} and not be one of "
                f"{sorted(_RESERVED_NAMES)}"
            )
        return name

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        return check_json_schema(schema, "custom memory type json_schema")


class MemorySettings(_Settings):
    """The memory types an assistant keeps. Defaults: profile and semantic facts."""

    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    semantic: SemanticSettings = Field(default_factory=SemanticSettings)
    episodic: EpisodicSettings = Field(default_factory=EpisodicSettings)
    procedural: ProceduralSettings = Field(default_factory=ProceduralSettings)
    custom_types: list[CustomType] = Field(default_factory=list, max_length=10)

    @field_validator("custom_types")
    @classmethod
    def _unique_names(cls, types: list[CustomType]) -> list[CustomType]:
        names = [t.name for t in types]
        if len(names) != len(set(names)):
            raise ValueError(f"custom memory type names must be unique, got {names}")
        return types
