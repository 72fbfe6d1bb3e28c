"""The run's results as a JSONL file, one record per line, appended as each is done: a rerun resumes.

The first line records the settings (models, data, embeddings); a rerun with other settings
is refused rather than mixing two runs' answers. Then ``ingest`` records (a conversation's
extraction cost and the memories it left, so a rerun restores them instead of paying again)
and ``question`` records (answer, raw verdict, tokens, latency, or the error that failed it).
A question recorded as failed is tried again by the next run; the latest record wins.
"""

import json
import os
from pathlib import Path
from typing import Any


class SettingsMismatchError(ValueError):
    """The results file belongs to a run with other settings."""


class ResultsFile:
    """Records already written, and appending new ones as soon as they exist."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self._ingests: dict[str, dict[str, Any]] = {}
        self._questions: dict[tuple[str, str, int], dict[str, Any]] = {}
        records = self._read_complete_lines()
        if records and records[0].get("settings") != settings:
            raise SettingsMismatchError(
                f"{path} holds results of a run with other settings:\n  {records[0].get('settings')}\n"
                f"this run:\n  {settings}\nPass another --results file, or delete it to start over."
            )
        if not records:
            self.append({"kind": "run", "settings": settings})
        for record in records[1:]:
            if record["kind"] == "ingest":
                self._ingests[record["conversation"]] = record
            elif record["kind"] == "question":
                self._questions[(record["conversation"], record["system"], record["index"])] = record

    def _read_complete_lines(self) -> list[dict[str, Any]]:
        """The records on complete lines; a line cut short by a killed run is dropped from the file."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with self.path.open("r+b") as file:
                file.truncate(len(complete))
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and make it durable before going on."""
        with self.path.open("a") as file:
            file.write(json.dumps(record, default=str) + "\n")
            file.flush()
            os.fsync(file.fileno())
        if record["kind"] == "ingest":
            self._ingests[record["conversation"]] = record
        elif record["kind"] == "question":
            self._questions[(record["conversation"], record["system"], record["index"])] = record

    def ingest(self, conversation: str) -> dict[str, Any] | None:
        """The conversation's ingestion, if it was recorded."""
        return self._ingests.get(conversation)

    def question(self, conversation: str, system: str, index: int) -> dict[str, Any] | None:
        """The latest record of one question for one system (``memory`` or ``full-context``)."""
        return self._questions.get((conversation, system, index))
