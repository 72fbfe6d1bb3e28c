"""The profile edit of ``PATCH /me/profile``: the default profile's fields, bounded, and null's meaning."""

from typing import Any

import pytest
from pydantic import ValidationError

from deployment.profile_patch import MAX_PROFILE_FIELDS, ProfilePatch, patched_profile
from memory.records import UserProfile


def test_the_edit_covers_exactly_the_default_profiles_fields() -> None:
    assert ProfilePatch.model_fields.keys() == UserProfile.model_fields.keys()
    example = UserProfile(name="Dana", interests=["tea"]).model_dump()
    assert ProfilePatch.model_validate(example).model_dump() == example


def test_null_resets_a_default_field_and_removes_any_other() -> None:
    stored = {"name": "Dana", "interests": ["tea"], "shoe_size": 44, "team": "red"}
    patch = ProfilePatch.model_validate({"interests": None, "shoe_size": None, "timezone": "Europe/Paris"})
    assert patched_profile(stored, patch) == {
        "name": "Dana",
        "interests": [],
        "team": "red",
        "timezone": "Europe/Paris",
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"height": float("nan")}, "finite number"),
        ({"address": {"city": "Lyon"}}, "text, a number, a boolean"),
        ({"nickname": "x" * 501}, "at most 500 characters"),
        ({"tags": ["x"] * 51}, "at most 50 items"),
        ({"shoe size": 44}, "should match pattern"),
        ({f"field_{i}": 1 for i in range(MAX_PROFILE_FIELDS + 1)}, "at most 50 fields"),
    ],
)
def test_a_field_outside_the_bounds_is_refused_with_one_reason(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as refusal:
        ProfilePatch.model_validate(body)
    [error] = refusal.value.errors()
    assert reason in error["msg"], error
