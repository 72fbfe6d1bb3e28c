"""``python -m bench.locomo`` end to end, offline: the real memory graph, models scripted on loopback.

A tiny LoCoMo-format conversation (two sessions, three questions of categories 1-4 and one
adversarial) is ingested through ``memory_graph``, answered from the agent's recall and judged.
The scripted extractor remembers two facts (Lyon, cello) and not the dog's name, so the memory
answers get 2 of 3 right while the full-context baseline, which sees everything, gets 3 of 3.
"""

import contextlib
import io
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bench import locomo
from bench.locomo_data import load_conversations, session_messages

from memory.records import message_time
from memory_graph.models import load_chat_model
from tests.support.fake_openai import FakeOpenAI, Rule, RuleThen, flatten_content

ANSWER_MODEL, JUDGE_MODEL, MEMORY_MODEL = "locomo-answer", "locomo-judge", "locomo-memory"

CONVERSATION: dict[str, Any] = {
    "sample_id": "tiny-1",
    "conversation": {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ben", "dia_id": "D1:1", "text": "We adopted a greyhound called Biscuit."},
            {"speaker": "Ana", "dia_id": "D1:2", "text": "By the way, I moved to Lyon."},
        ],
        "session_2_date_time": "10:00 am on 20 June, 2023",
        "session_2": [
            {"speaker": "Ben", "dia_id": "D2:1", "text": "Biscuit loves the park.", "blip_caption": "a dog running"},
            {"speaker": "Ana", "dia_id": "D2:2", "text": "I started learning the cello."},
        ],
    },
    "qa": [
        {"question": "Where does Ana live?", "answer": "Lyon", "evidence": ["D1:2"], "category": 4},
        {"question": "What is the name of Ben's dog?", "answer": "Biscuit", "evidence": ["D1:1"], "category": 1},
        {"question": "Which instrument is Ana learning?", "answer": "cello", "evidence": ["D2:2"], "category": 2},
        {"question": "Why did Ben sell Biscuit?", "adversarial_answer": "money", "evidence": [], "category": 5},
    ],
}


def _memory(content: str) -> RuleThen:
    return {"tool_calls": [{"name": "Memory", "arguments": {"content": content}}]}


def _verdict(label: str) -> RuleThen:
    return {"content": f'The answers name the same thing. {{"label": "{label}"}}'}


def _judged(gold: str) -> Rule:
    return {
        "when": {"model": JUDGE_MODEL, "contains": f"Gold answer: {gold}\nGenerated answer: {gold}"},
        "then": _verdict("CORRECT"),
    }


# The extractor is shown the whole batch: session 2's batch also holds session 1's last messages.
RULES: list[Rule] = [
    {"when": {"tool": "Memory", "contains": "cello"}, "then": _memory("Ana is learning the cello")},
    {"when": {"tool": "Memory", "contains": "Lyon"}, "then": _memory("Ana moved to Lyon")},
    # Answers come only from what the prompt holds: recalled memories, or the whole transcript.
    {
        "when": {"model": ANSWER_MODEL, "contains": "Ana live", "any_contains": "moved to Lyon"},
        "then": {"content": "Lyon"},
    },
    {
        "when": {"model": ANSWER_MODEL, "contains": "instrument", "any_contains": "learning the cello"},
        "then": {"content": "cello"},
    },
    {
        "when": {"model": ANSWER_MODEL, "contains": "dog", "any_contains": "greyhound called Biscuit"},
        "then": {"content": "Biscuit"},
    },
    {"when": {"model": ANSWER_MODEL}, "then": {"content": "I do not know."}},
    _judged("Lyon"),
    _judged("cello"),
    _judged("Biscuit"),
    {"when": {"model": JUDGE_MODEL}, "then": _verdict("WRONG")},
]
LAST_LINE = re.compile(r"locomo: J=(\d\.\d{3}) questions=(\d+) memory_tokens_p50=(\d+)")


@pytest.fixture
def env(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The fake as the OpenAI endpoint of the runs, its rules reset; returns the data file."""
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    for name in ("EMBEDDING_MODEL", "CHAT_MODEL", "MEMORY_MODEL"):
        monkeypatch.delenv(name, raising=False)
    fake.reset()
    fake.set_rules(RULES)
    data = tmp_path / "locomo-tiny.json"
    data.write_text(json.dumps([CONVERSATION]))
    return data


def run(data: Path, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m bench.locomo`` as a user runs it (quick retries), in this process.

    In-process rather than a subprocess: each run would otherwise import the whole stack again
    (seconds each; this module makes nine runs). Model clients are built afresh for each run, as
    a new process would, since each run has its own event loop.
    """
    argv = [
        "--data",
        str(data),
        "--results",
        str(results),
        "--model",
        f"openai:{ANSWER_MODEL}",
        "--retry-delay",
        "0.01",
    ]
    argv += ["--judge", f"openai:{JUDGE_MODEL}", "--memory-model", f"openai:{MEMORY_MODEL}", *extra]
    stdout, stderr = io.StringIO(), io.StringIO()
    load_chat_model.cache_clear()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = locomo.main(argv)
        except SystemExit as exit_:
            status = int(exit_.code or 0)
    load_chat_model.cache_clear()
    return subprocess.CompletedProcess(
        ["python", "-m", "bench.locomo", *argv], status, stdout.getvalue(), stderr.getvalue()
    )


def records(results: Path, kind: str) -> list[dict]:
    return [r for line in results.read_text().splitlines() if (r := json.loads(line))["kind"] == kind]


def calls(fake: FakeOpenAI, model: str) -> list[str]:
    """The last user message of each call to ``model``."""
    return [flatten_content(r["messages"][-1]["content"]) for r in fake.requests() if r["model"] == model]


def test_sessions_become_timed_chat_turns_of_one_user(env: Path) -> None:
    [conversation] = load_conversations(env)
    first, second = (session_messages(conversation, session) for session in conversation.sessions)

    assert [m.text for m in first] == [
        "Ben: We adopted a greyhound called Biscuit.",
        "Ana: By the way, I moved to Lyon.",
    ]
    assert second[0].text == "Ben: Biscuit loves the park. [shares a photo: a dog running]"
    assert {message_time(m) for m in first} == {datetime(2023, 5, 8, 13, 56, tzinfo=UTC)}
    assert {message_time(m) for m in second} == {datetime(2023, 6, 20, 10, 0, tzinfo=UTC)}
    assert [q.question for q in conversation.questions] == [q["question"] for q in CONVERSATION["qa"][:3]]


def succeeded(done: subprocess.CompletedProcess[str], status: int = 0) -> list[str]:
    """The run's stdout lines, once it is known to have ended with ``status``."""
    assert done.returncode == status, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_ingests_answers_from_recall_and_judges_retrying_a_judge_that_fails_once(
    env: Path, fake: FakeOpenAI, tmp_path: Path
) -> None:
    # A 400 is not retried by the OpenAI client itself: the harness's own retry must do it.
    fails_once: Rule = {
        "when": {"model": JUDGE_MODEL, "contains": "Gold answer: Lyon"},
        "then": {"error": 400},
        "times": 1,
    }
    fake.set_rules([fails_once, *RULES])
    results = tmp_path / "results.jsonl"

    done = run(env, results, "--baseline", "full-context")

    out = succeeded(done)

    j, questions, memory_tokens = LAST_LINE.fullmatch(out[-1]).groups()  # type: ignore[union-attr]
    assert (j, questions) == ("0.667", "3")
    report = "\n".join(out)
    assert re.search(r"^overall\s+3\s+0\.667\s+1\.000\s+0\s+0$", report, re.M)
    assert re.search(r"^1 multi-hop\s+1\s+0\.000\s+1\.000", report, re.M)
    # One memory graph run per session, each extracting from its own session's messages.
    facts = [flatten_content(r["messages"][-1]["content"]) for r in fake.requests() if "Memory" in r["tools"]]
    assert len(facts) == 2 and "cello" not in facts[0] and "cello" in facts[1]
    [ingest] = records(results, "ingest")
    assert ingest["memory_runs"] == 2 and ingest["memories"] == 2
    assert ingest["extraction"]["calls"] == len(calls(fake, MEMORY_MODEL))
    assert ingest["extraction"]["input_tokens"] > 0
    assert re.search(rf"^tiny-1\s+2\s+2\s+{len(calls(fake, MEMORY_MODEL))}\s", report, re.M)
    # The recalled memories reached the answer prompt; the adversarial question was never asked.
    asked = ["Where does Ana live?", "What is the name of Ben's dog?", "Which instrument is Ana learning?"]
    assert sorted(calls(fake, ANSWER_MODEL)) == sorted(2 * asked)
    by_question = {(r["system"], r["question"]): r for r in records(results, "question")}
    lyon = by_question[("memory", "Where does Ana live?")]
    assert (lyon["answer"], lyon["label"]) == ("Lyon", "CORRECT")
    assert re.search(r"q0 \((memory|full-context)\) judge failed \(.*try 2/3", done.stderr)
    assert lyon["verdict"] == 'The answers name the same thing. {"label": "CORRECT"}'
    assert lyon["memory_tokens"] > 0 and lyon["prompt_tokens"] > lyon["memory_tokens"]
    dog = by_question[("memory", "What is the name of Ben's dog?")]
    assert (dog["answer"], dog["label"]) == ("I do not know.", "WRONG")
    assert by_question[("full-context", "What is the name of Ben's dog?")]["label"] == "CORRECT"
    assert by_question[("full-context", "Where does Ana live?")]["memory_tokens"] > int(memory_tokens)


def test_a_stopped_run_resumes_where_it_stopped_with_the_same_totals_and_other_settings_are_refused(
    env: Path, fake: FakeOpenAI, tmp_path: Path
) -> None:
    results = tmp_path / "results.jsonl"
    complete = succeeded(run(env, results))
    lines = results.read_text().splitlines(keepends=True)
    # As if killed while writing the second answer: settings, ingestion, one answer, half a line.
    assert [json.loads(line)["kind"] for line in lines[:3]] == ["run", "ingest", "question"]
    results.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    fake.reset()
    fake.set_rules(RULES)

    resumed = run(env, results)

    assert succeeded(resumed)[-1] == complete[-1]
    assert "resuming: 1/3 answers already judged" in resumed.stderr
    assert calls(fake, MEMORY_MODEL) == []  # memories restored from the results file, not extracted again
    assert len(calls(fake, ANSWER_MODEL)) == 2 and len(calls(fake, JUDGE_MODEL)) == 2
    assert sorted(r["index"] for r in records(results, "question")) == [0, 1, 2]
    extraction_row = next(line for line in complete if line.startswith("tiny-1"))
    assert extraction_row in succeeded(resumed)

    assert succeeded(run(env, results))[-1] == complete[-1]
    assert len(calls(fake, ANSWER_MODEL)) == 2  # nothing was left to do

    before = results.read_text()
    refused = run(env, results, "--judge", "openai:another-judge")
    assert refused.returncode == 2
    assert "holds results of a run with other settings" in refused.stderr
    assert results.read_text() == before


def test_a_judge_that_keeps_failing_is_recorded_then_retried_by_the_next_run(
    env: Path, fake: FakeOpenAI, tmp_path: Path
) -> None:
    always_fails: Rule = {"when": {"model": JUDGE_MODEL, "contains": "Gold answer: Lyon"}, "then": {"error": 400}}
    fake.set_rules([always_fails, *RULES])
    results = tmp_path / "results.jsonl"

    out = succeeded(run(env, results), status=1)

    assert out[-1].startswith("locomo: J=0.333 questions=3 ")
    assert re.search(r"^overall\s+3\s+0\.333\s+1$", "\n".join(out), re.M)
    failed = next(r for r in records(results, "question") if r["index"] == 0)
    assert failed["status"] == "failed" and failed["answer"] == "Lyon"
    assert "judge failed 3 times" in failed["error"]

    fake.reset()
    fake.set_rules(RULES)
    assert succeeded(run(env, results))[-1].startswith("locomo: J=0.667 questions=3 ")
    assert calls(fake, ANSWER_MODEL) == []  # the answer was kept; only the verdict was missing
    assert len(calls(fake, JUDGE_MODEL)) == 1
