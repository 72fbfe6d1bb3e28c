"""Run the real ``langgraph dev`` server as a subprocess, for end-to-end tests.

What shapes this harness (checked against langgraph-cli 0.4.40, langgraph-api
0.16.7, langgraph-runtime-inmem 0.36.7):

* The in-memory runtime keeps its state (threads, runs, checkpoints, store) in
  ``.langgraph_api/`` under the *current working directory*; the paths are
  hard-coded and relative.  The server therefore runs with its working
  directory set to a scratch directory, never the repository, and that
  directory is kept across ``restart()`` so state survives like it would for a
  developer.
* Relative paths inside ``langgraph.json`` (graph files, the ``env`` file,
  ``dependencies``, ``store.index.embed``, ``store.path``, ``checkpointer.path`` ...) are resolved
  against the working directory too, *not* against the config file.  So the
  harness writes a copy of the config into the working directory with those
  paths made absolute relative to the original config file.
* Variables from the config's ``env`` override the process environment.  To
  keep tests hermetic, the copy drops from its ``env`` every variable the
  harness sets itself (``env`` given here, the tracing/analytics switches), the
  LangSmith API keys and the ``AUTH_*`` settings, so the test's values win,
  nothing is traced and auth stays off unless a test turns it on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from dotenv import dotenv_values

# The deployment secret of memory thread ids on every test server (see agent.scheduling).
MEMORY_THREAD_SECRET = "memory-thread-secret-of-the-tests"
# Settings that keep a test run offline and quiet whatever the developer's shell or .env says.
HERMETIC_ENV: Mapping[str, str] = {
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "PYTHONUNBUFFERED": "1",
    # The in-memory default unless a test asks for Postgres, whatever the developer's .env says.
    "POSTGRES_URI": "",
    # Known to the tests, so that they can find a conversation's memory thread.
    "MEMORY_THREAD_SECRET": MEMORY_THREAD_SECRET,
}
# Removed unless passed explicitly in ``env``: with a key, LangSmith may upload traces.
REMOVED_ENV = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")
# Also removed unless passed explicitly: auth settings (AUTH_*) in a developer's .env would
# turn auth on for the tests that expect the default, auth off.
REMOVED_ENV_PREFIXES = ("AUTH_",)

CONFIG_FILENAME = "langgraph.dev-server.json"
LOG_FILENAME = "langgraph-dev.log"
_LOG_TAIL_LINES = 200
# Config fields holding "path/to/file.py:attr" import specs, as (section, key).
_IMPORT_SPEC_FIELDS = (
    ("auth", "path"),
    ("http", "app"),
    ("checkpointer", "path"),
    ("store", "path"),
    ("priority", "path"),
)


class DevServerError(RuntimeError):
    """``langgraph dev`` exited or did not become ready; the message holds its output."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _absolute_spec(spec: str, base: Path) -> str:
    """Make a ``file.py:attr`` spec absolute; leave module specs (``pkg.mod:attr``) alone."""
    path, sep, attr = spec.rpartition(":")
    if not sep:
        path, attr = spec, ""
    if not (path.endswith(".py") or "/" in path):
        return spec
    return f"{(base / path).resolve()}{sep}{attr}"


class DevServer:
    """``langgraph dev`` on a free loopback port, as a context manager.

    ``config_path`` is the project's ``langgraph.json``; ``env`` is added to (and
    wins over) the current environment and the config's ``env``.  ``workdir``
    holds the server's state, its config copy and its log; by default it is a
    temporary directory removed on exit, and a given one is kept.
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        n_jobs_per_worker: int | None = 4,
        extra_args: Sequence[str] = (),
        unset: Sequence[str] = (),
        config_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.config_path = Path(config_path).resolve()
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.n_jobs_per_worker = n_jobs_per_worker
        self.extra_args = list(extra_args)
        self.unset = frozenset(unset)
        self.config_overrides = dict(config_overrides or {})
        self._owns_workdir = workdir is None
        self._workdir = Path(workdir).resolve() if workdir is not None else None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        """Working directory of the server; ``.langgraph_api/`` lives here."""
        if self._workdir is None:
            raise RuntimeError("DevServer has not been started")
        return self._workdir

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("DevServer has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr, appended across restarts."""
        return self.workdir / LOG_FILENAME

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> Self:
        """Start the server and wait until ``GET /ok`` answers 200."""
        if self._process is not None:
            raise RuntimeError("DevServer is already running")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="langgraph-dev-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._port is None:
            self._port = _free_port()
        config_copy = self.workdir / CONFIG_FILENAME
        config_copy.write_text(json.dumps(self._config_copy(), indent=2))

        command = [str(Path(sys.executable).parent / "langgraph"), "dev", "--no-browser", "--no-reload"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--config", str(config_copy)]
        if self.n_jobs_per_worker is not None:
            command += ["--n-jobs-per-worker", str(self.n_jobs_per_worker)]
        command += self.extra_args

        with self.log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(command)}\n".encode())
            log.flush()
            # A new session makes the server and anything it spawns one process group to stop.
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self._process_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready(self._process)
        except BaseException:
            self.stop(graceful=False)
            raise
        return self

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the server: SIGINT (as Ctrl-C would), then SIGKILL after ``stop_timeout``.

        ``graceful=False`` kills at once, like a crash: state not yet flushed to
        ``.langgraph_api/`` is lost, which restart-safety tests may want.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._signal_group(process, signal.SIGINT if graceful else signal.SIGKILL)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(process, signal.SIGKILL)
                process.wait()
        # Whatever the server spawned must not outlive it.
        self._signal_group(process, signal.SIGKILL)

    def restart(self, *, graceful: bool = True) -> None:
        """Stop and start again on the same port and working directory, keeping state."""
        self.stop(graceful=graceful)
        self.start()

    def close(self) -> None:
        """Stop the server and remove the working directory if this object created it."""
        self.stop()
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            # __exit__ will not run; the error already carries the server's output.
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None and self._workdir is not None and not isinstance(exc, DevServerError):
            # The log is about to be deleted; pytest shows captured stderr of failed tests.
            print(f"--- langgraph dev log tail ({self.log_path}) ---\n{self._log_tail()}", file=sys.stderr)
        self.close()

    def _signal_group(self, process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        # trust_env=False: a proxy configured for package registries must not see loopback calls.
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                code = process.poll()
                if code is not None:
                    raise DevServerError(f"langgraph dev exited with code {code} before serving.\n{self._log_tail()}")
                try:
                    if client.get(f"{self.url}/ok").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise DevServerError(
                        f"langgraph dev did not serve /ok within {self.startup_timeout:g}s.\n{self._log_tail()}"
                    )
                time.sleep(0.2)

    def _log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-_LOG_TAIL_LINES:])

    def _process_env(self) -> dict[str, str]:
        removed = {*REMOVED_ENV, *self.unset}
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in removed and not key.startswith(REMOVED_ENV_PREFIXES)
        }
        env.update(HERMETIC_ENV)
        env.update(self.env)
        return env

    def _config_copy(self) -> dict[str, Any]:
        """The config with paths absolute and the harness's variables taking precedence."""
        config: dict[str, Any] = json.loads(self.config_path.read_text())
        base = self.config_path.parent
        for section, values in self.config_overrides.items():
            config[section] = {**(config.get(section) or {}), **values}

        graphs = config.get("graphs") or {}
        for name, spec in graphs.items():
            if isinstance(spec, str):
                graphs[name] = _absolute_spec(spec, base)
            elif isinstance(spec, dict) and isinstance(spec.get("path"), str):
                spec["path"] = _absolute_spec(spec["path"], base)

        if isinstance(config.get("dependencies"), list):
            config["dependencies"] = [
                str((base / dep).resolve()) if isinstance(dep, str) and (base / dep).exists() else dep
                for dep in config["dependencies"]
            ]

        index = (config.get("store") or {}).get("index")
        if isinstance(index, dict) and isinstance(index.get("embed"), str):
            index["embed"] = _absolute_spec(index["embed"], base)
        for section, key in _IMPORT_SPEC_FIELDS:
            holder = config.get(section)
            if isinstance(holder, dict) and isinstance(holder.get(key), str):
                holder[key] = _absolute_spec(holder[key], base)
        ui = config.get("ui")
        if isinstance(ui, dict):
            config["ui"] = {name: _absolute_spec(path, base) for name, path in ui.items()}

        env = config.get("env")
        if isinstance(env, str):
            env = {k: v for k, v in dotenv_values(base / env).items() if v is not None}
        if isinstance(env, dict):
            overridden = set(self.env) | set(HERMETIC_ENV) | set(REMOVED_ENV) | self.unset
            config["env"] = {
                k: v for k, v in env.items() if k not in overridden and not k.startswith(REMOVED_ENV_PREFIXES)
            }
        return config
