"""Whose memories a run reads and writes."""

import os
from collections.abc import Mapping
from typing import Any

LOCAL_USER_ID = "local-user"


def resolve_user_id(context_user_id: str | None, config: Mapping[str, Any] | None) -> str:
    """The user of a run: the context's ``user_id``, else ``configurable.user_id``.

    Without either (local development, Studio), ``$DEFAULT_USER_ID`` or ``local-user``.
    """
    if context_user_id:
        return context_user_id
    configurable = (config or {}).get("configurable") or {}
    from_config = configurable.get("user_id")
    if from_config:
        return str(from_config)
    return os.environ.get("DEFAULT_USER_ID") or LOCAL_USER_ID
