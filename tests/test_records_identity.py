"""Record format, namespace layout and user identity."""

import pytest

from memory.identity import LOCAL_USER_ID, resolve_user_id
from memory.records import memory_namespace, memory_record, memory_text, profile_namespace


def test_memory_text_reads_both_writers_shapes() -> None:
    assert memory_text(memory_record("User likes tea")) == "User likes tea"
    langmem_manager_shape = {"kind": "Memory", "content": {"content": "User owns a cat"}}
    assert memory_text(langmem_manager_shape) == "User owns a cat"


def test_each_user_has_own_namespaces() -> None:
    assert memory_namespace("alice") == ("memories", "alice")
    assert memory_namespace("alice") != memory_namespace("bob")
    assert profile_namespace("alice") != memory_namespace("alice")


def test_user_id_comes_from_context_first_then_configurable() -> None:
    config = {"configurable": {"user_id": "from-config"}}
    assert resolve_user_id("from-context", config) == "from-context"
    assert resolve_user_id(None, config) == "from-config"


def test_local_default_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEFAULT_USER_ID", raising=False)
    assert resolve_user_id(None, {}) == LOCAL_USER_ID
    monkeypatch.setenv("DEFAULT_USER_ID", "me")
    assert resolve_user_id(None, None) == "me"
