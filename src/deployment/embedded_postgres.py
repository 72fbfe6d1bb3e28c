"""An embedded PostgreSQL 16 with pgvector, for Postgres mode without installing a server.

``POSTGRES_URI=embedded`` starts one from the ``pgserver`` package in a project-local data
directory (``$EMBEDDED_POSTGRES_DIR``, else ``.pgdata`` in the current directory). The server
listens on a Unix socket inside that directory only, and is shared by every process of the
project that uses the same directory: the last one to let go stops it.

We wrap ``pgserver`` rather than call ``pgserver.get_server`` directly for three reasons:

* it never forgets a process that died without running its exit hooks (a killed server or
  test), and then never stops PostgreSQL again; dead processes are dropped first;
* it stops PostgreSQL only from an ``atexit`` hook, so a server that closes its persistence
  and keeps running (a reload, a test) would leave it up; here the last user in a process
  releases its handle when it is done;
* it warns on import when ``XDG_RUNTIME_DIR`` is unset (containers, CI), which is noise here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgserver import PostgresServer

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "EMBEDDED_POSTGRES_DIR"
DEFAULT_DATA_DIR = ".pgdata"
# pgserver's file listing the processes that use a data directory.
_HANDLES_FILE = ".handle_pids.json"

_lock = threading.Lock()
_users: dict[Path, int] = {}


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started; the message says why and where to look."""


def data_dir() -> Path:
    """Where the embedded server keeps its data: ``$EMBEDDED_POSTGRES_DIR``, else ``./.pgdata``."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser().resolve()


def _pgserver() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

    return pgserver


def _forget_dead_processes(directory: Path) -> None:
    """Drop processes that died without telling pgserver, so that the last live one stops it."""
    import psutil

    handles = directory / _HANDLES_FILE
    with _pgserver().PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _start(directory: Path) -> PostgresServer:
    directory.parent.mkdir(parents=True, exist_ok=True)
    if directory.exists():
        _forget_dead_processes(directory)
    try:
        server: PostgresServer = _pgserver().get_server(directory, cleanup_mode="stop")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        log = directory / "log"
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL in {directory} did not start ({error}). Its log is {log}. "
            f"Delete the directory for a fresh one, or set POSTGRES_URI to a server of your own."
        ) from error
    return server


def acquire(directory: Path | None = None) -> str:
    """Start the embedded server (or join the running one) and return its connection URI.

    Blocking (about a second on a fresh directory): call it from a thread in async code.
    Every ``acquire`` needs a matching ``release``.
    """
    directory = directory or data_dir()
    with _lock:
        server = _start(directory)
        _users[directory] = _users.get(directory, 0) + 1
    uri: str = server.get_uri()
    logger.info("Embedded PostgreSQL in %s is up (%s).", directory, uri)
    return uri


def release(directory: Path | None = None) -> None:
    """Let go of the embedded server; the last user of all processes stops it."""
    directory = directory or data_dir()
    with _lock:
        remaining = _users.get(directory, 0) - 1
        if remaining > 0:
            _users[directory] = remaining
            return
        _users.pop(directory, None)
        instances = _pgserver().PostgresServer._instances
        server = instances.get(directory)
        if server is not None:
            _forget_dead_processes(directory)
            server.cleanup()
            # The next acquire registers this process again instead of reusing a released handle.
            instances.pop(directory, None)
            logger.info("Let go of the embedded PostgreSQL in %s.", directory)


@contextlib.contextmanager
def embedded_postgres(directory: Path | None = None) -> Iterator[str]:
    """The URI of the embedded server for the duration of the block (blocking on entry and exit)."""
    uri = acquire(directory)
    try:
        yield uri
    finally:
        release(directory)


def is_running(directory: Path | None = None) -> bool:
    """Whether a PostgreSQL server is running on ``directory`` (from its ``postmaster.pid``)."""
    directory = directory or data_dir()
    info = _pgserver().utils.PostmasterInfo.read_from_pgdata(directory)
    return info is not None and bool(info.is_running())
