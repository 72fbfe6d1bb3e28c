"""LoCoMo conversations as the memory service sees them: timed chat messages, questions and a transcript.

The file format is LoCoMo's (Maharana et al., ACL 2024; ``data/locomo10.json`` of
snap-research/LoCoMo): a JSON list of ``{"sample_id", "conversation", "qa"}``, where
``conversation`` holds ``speaker_a``/``speaker_b``, ``session_N`` (turns ``{speaker, dia_id, text}``,
some with a ``blip_caption`` of a shared photo) and ``session_N_date_time`` ("1:56 pm on 8 May, 2023").
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from memory.records import MESSAGE_TIME_FIELD

# Categories 1-4 are answerable from the conversation; 5 (adversarial) has no gold answer and,
# as in the published evaluations, is not asked.
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_SESSION_KEY = re.compile(r"session_(\d+)")
_SESSION_TIME_FORMAT = "%I:%M %p on %d %B, %Y"


@dataclass(frozen=True)
class Turn:
    """One dialog turn."""

    dia_id: str
    speaker: str
    text: str


@dataclass(frozen=True)
class Session:
    """One session: its turns and when it took place."""

    number: int
    time: datetime
    turns: list[Turn]


@dataclass(frozen=True)
class Question:
    """A question of categories 1-4; ``index`` is its position in the conversation's ``qa`` list."""

    index: int
    question: str
    answer: str
    category: int
    evidence: frozenset[str] = frozenset()
    """The dia_ids of the turns that answer it (empty for a few questions)."""


@dataclass(frozen=True)
class Conversation:
    """A conversation between two speakers over many sessions, and the questions about it."""

    sample_id: str
    speakers: tuple[str, str]
    sessions: list[Session]
    questions: list[Question]


def parse_session_time(raw: str) -> datetime:
    """LoCoMo's session time ("1:56 pm on 8 May, 2023"), read as UTC."""
    return datetime.strptime(raw.strip(), _SESSION_TIME_FORMAT).replace(tzinfo=UTC)


def _turn(raw: dict[str, Any]) -> Turn:
    text = str(raw.get("text", ""))
    if caption := raw.get("blip_caption"):
        text = f"{text} [shares a photo: {caption}]".strip()
    return Turn(dia_id=str(raw["dia_id"]), speaker=str(raw["speaker"]), text=text)


def _conversation(raw: dict[str, Any]) -> Conversation:
    body = raw["conversation"]
    numbers = sorted(int(match[1]) for key in body if (match := _SESSION_KEY.fullmatch(key)))
    sessions = [
        Session(number, parse_session_time(body[f"session_{number}_date_time"]), [_turn(t) for t in body[key]])
        for number in numbers
        if (key := f"session_{number}") and body[key]
    ]
    questions = [
        # Some gold answers are numbers (a year): the judge compares text.
        Question(
            index,
            str(qa["question"]),
            str(qa["answer"]),
            int(qa["category"]),
            frozenset(map(str, qa.get("evidence") or [])),
        )
        for index, qa in enumerate(raw.get("qa", []))
        if int(qa["category"]) in CATEGORIES and "answer" in qa
    ]
    return Conversation(str(raw["sample_id"]), (body["speaker_a"], body["speaker_b"]), sessions, questions)


def parse_conversations(raw: list[dict[str, Any]]) -> list[Conversation]:
    """The conversations of a LoCoMo-format document (a JSON list), in order."""
    return [_conversation(conversation) for conversation in raw]


def load_conversations(path: Path) -> list[Conversation]:
    """The conversations of a LoCoMo-format file, in file order."""
    return parse_conversations(json.loads(path.read_text()))


def session_messages(conversation: Conversation, session: Session) -> list[HumanMessage]:
    """A session as the user's chat turns, each carrying the session's time.

    Both speakers' turns are the one user's messages, named in the text ("Caroline: ..."): the
    memory service keeps memories of a user, and LoCoMo asks about both speakers alike.
    """
    timestamp = session.time.isoformat()
    return [
        HumanMessage(
            f"{turn.speaker}: {turn.text}",
            id=f"{conversation.sample_id}:{turn.dia_id}",
            additional_kwargs={MESSAGE_TIME_FIELD: timestamp},
        )
        for turn in session.turns
    ]


def transcript(conversation: Conversation) -> str:
    """The whole conversation as text, session by session with its date: the full-context baseline."""
    parts = []
    for session in conversation.sessions:
        when = session.time.strftime("%-I:%M %p on %-d %B %Y")
        lines = "\n".join(f"{turn.speaker}: {turn.text}" for turn in session.turns)
        parts.append(f'<session number="{session.number}" date="{when}">\n{lines}\n</session>')
    return "\n".join(parts)
