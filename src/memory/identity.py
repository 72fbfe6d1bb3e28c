"""Whose memories a run reads and writes."""

import os
from collections.abc import Mapping
from typing import Any

LOCAL_USER_ID = "local-user"
# Injected by the LangGraph server into every run created by an authenticated request; a
# client cannot set it (the server overwrites whatever the request carried).
AUTH_USER_ID_KEY = "langgraph_auth_user_id"


def authenticated_user_id(config: Mapping[str, Any] | None) -> str | None:
    """The user the server authenticated for this run, if auth is on and a caller was known."""
    configurable = (config or {}).get("configurable") or {}
    user_id = configurable.get(AUTH_USER_ID_KEY)
    return str(user_id) if user_id else None


def resolve_user_id(context_user_id: str | None, config: Mapping[str, Any] | None) -> str:
    """The user of a run.

    With auth on, the authenticated user, whatever the context or configurable say: a
    conflicting ``user_id`` can only come from an assistant's settings (the server refuses
    runs that name another user), and neither honouring it (a leak) nor failing every run of
    that assistant is right, so it is ignored.

    Without auth (local development, Studio, in-process runs): the context's ``user_id``,
    else ``configurable.user_id``, else ``$DEFAULT_USER_ID`` or ``local-user``.
    """
    authenticated = authenticated_user_id(config)
    if authenticated:
        return authenticated
    if context_user_id:
        return context_user_id
    configurable = (config or {}).get("configurable") or {}
    from_config = configurable.get("user_id")
    if from_config:
        return str(from_config)
    return os.environ.get("DEFAULT_USER_ID") or LOCAL_USER_ID
