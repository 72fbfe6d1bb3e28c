"""An edit of the user's profile through ``PATCH /me/profile``: what it may set, and the result.

The default profile's fields (``memory.records.UserProfile``) are checked against their types;
an assistant may configure a profile schema of its own, so any other flat field is accepted
too, as text, a number, a boolean or a list of those. Text, lists and the number of fields
are bounded, and the bounds are in the OpenAPI schema, so whatever fits it is accepted.
"""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from memory.records import UserProfile

MAX_PROFILE_TEXT_CHARS = 500
MAX_PROFILE_LIST_ITEMS = 50
MAX_PROFILE_FIELDS = 50
FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

Text = Annotated[str, Field(max_length=MAX_PROFILE_TEXT_CHARS)]
TextList = Annotated[list[Text], Field(max_length=MAX_PROFILE_LIST_ITEMS)]
# Finite: a number too large for a float (1e400) parses as Infinity, which is not JSON.
Scalar = Text | bool | int | FiniteFloat | None


def _one_reason(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Say why a value fits none of the types once, rather than once per type it is not."""
    try:
        return handler(value)
    except ValidationError as error:
        bounds = [e["msg"] for e in error.errors() if not e["type"].endswith(("_type", "_parsing"))]
        reason = bounds[0] if bounds else "Input should be text, a number, a boolean, null or a list of those"
        raise PydanticCustomError("profile_value", reason) from None


OtherField = Annotated[
    Scalar | Annotated[list[Scalar], Field(max_length=MAX_PROFILE_LIST_ITEMS)], WrapValidator(_one_reason)
]


class ProfilePatch(BaseModel):
    """Profile fields to set; fields left out keep their value, null clears one.

    The default profile's fields are checked against their types; fields of a configured
    profile schema are accepted as text, numbers, booleans or lists of those.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"maxProperties": MAX_PROFILE_FIELDS, "propertyNames": {"pattern": FIELD_NAME}},
    )
    __pydantic_extra__: dict[Annotated[str, StringConstraints(pattern=FIELD_NAME)], OtherField] = Field(init=False)

    # UserProfile's fields, bounded (tests/test_profile_patch.py keeps the two in step).
    name: Text | None = None
    preferred_name: Text | None = None
    language: Text | None = None
    timezone: Text | None = None
    response_style: Text | None = None
    interests: TextList | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounded_field_count(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_PROFILE_FIELDS:
            raise ValueError(f"A profile edit sets at most {MAX_PROFILE_FIELDS} fields")
        return data


def patched_profile(profile: dict[str, Any], patch: ProfilePatch) -> dict[str, Any]:
    """``profile`` with the patch applied; null resets a default field and removes any other.

    Fields not in the patch are kept as stored, including those of a configured profile schema.
    """
    patched = dict(profile)
    for name, value in patch.model_dump(mode="json", exclude_unset=True).items():
        field = UserProfile.model_fields.get(name)
        if value is not None:
            patched[name] = value
        elif field is not None:
            patched[name] = field.get_default(call_default_factory=True)
        else:
            patched.pop(name, None)
    return patched
