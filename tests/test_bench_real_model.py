"""The real-model benchmark's scoring, on hand-made memories and profiles (the benchmark itself needs a model)."""

from datetime import UTC, datetime, timedelta

from bench.real_model import (
    ANA_DIET,
    ANA_INTRO,
    ANA_MOVE,
    ANA_SISTER,
    FACTS,
    HOLD_DELAY_SECONDS,
    SETTLE_DELAY_SECONDS,
    FactTracker,
    collapse_repeats,
    duplicate_pairs,
    held,
    memory_content,
    unsupported_profile_values,
)

ANA_FACTS = [fact for fact in FACTS if fact.user == "ana"]


def test_restated_memories_are_duplicates_and_distinct_ones_are_not() -> None:
    texts = [
        "Ana is vegetarian.",
        "The user is vegetarian",
        "Ana lives in Lisbon and works as a nurse.",
        "ana LIVES in lisbon, and works as a nurse!",
        "Marta is getting married in June.",
    ]

    pairs = duplicate_pairs(texts)

    assert pairs == [(texts[2], texts[3])]


def test_near_duplicates_count_from_a_jaccard_of_four_fifths() -> None:
    base = "Ana lives in Lisbon and works as a nurse at the central hospital"
    one_word_added = base + " downtown"  # 7 shared content words of 8
    two_words_changed = "Ana lives in Porto and works as a doctor at the central hospital"

    assert duplicate_pairs([base, one_word_added]) == [(base, one_word_added)]
    assert duplicate_pairs([base, two_words_changed]) == []


def test_a_fact_stored_once_and_gone_later_is_lost_and_one_never_stored_is_missing() -> None:
    tracker = FactTracker(ANA_FACTS)
    said = [ANA_INTRO, ANA_DIET, ANA_SISTER]

    first = tracker.check(["Ana lives in Lisbon and works as a nurse.", "No meat in recipes please."], said)
    second = tracker.check(["No meat in recipes please.", "Marta is getting married in June."], said)

    assert first.lost == [] and first.missing == ["sister Marta marries in June"]
    assert second.lost == ["lives in Lisbon", "nurse"] and second.missing == []


def test_facts_not_yet_stated_are_not_checked_and_retracted_ones_are_stale_not_lost() -> None:
    tracker = FactTracker(ANA_FACTS)
    tracker.check(["Ana lives in Lisbon and works as a nurse."], [ANA_INTRO])

    after_move = tracker.check(["Ana lives in Lisbon and works as a nurse."], [ANA_INTRO, ANA_MOVE])
    moved = tracker.check(["Ana works as a nurse.", "Ana moved to Porto."], [ANA_INTRO, ANA_MOVE])

    assert after_move.missing == ["lives in Porto"] and after_move.stale == ["lives in Lisbon"]
    assert after_move.lost == [] and "vegetarian" not in after_move.missing
    assert moved.lost == [] and moved.missing == [] and moved.stale == []


def test_profile_values_must_come_from_what_the_user_said() -> None:
    profile = {
        "name": "Marta",
        "preferred_name": "ana",
        "language": "Portuguese",
        "timezone": "Europe/Lisbon",
        "response_style": "",
        "interests": ["nursing", "health", "recipes"],
        "extra": {"city": "Porto"},
    }

    unsupported = unsupported_profile_values(profile, [ANA_INTRO, ANA_DIET, ANA_SISTER], ["Ana"])

    assert unsupported == [
        ("name", "Marta"),
        ("language", "Portuguese"),
        ("interests", "health"),
        ("extra", "Porto"),
    ]


def test_memory_text_is_read_from_either_stored_shape() -> None:
    assert memory_content({"content": "Ana is vegetarian."}) == "Ana is vegetarian."
    assert memory_content({"kind": "Memory", "content": {"content": "Ana is a nurse."}}) == "Ana is a nurse."


def test_a_runaway_turns_repeated_tool_calls_are_printed_once_with_their_count() -> None:
    calls = ["search_memory()", "manage_memory(a)", "manage_memory(a)", "manage_memory(a)", "search_memory()"]

    assert collapse_repeats(calls) == ["search_memory()", "manage_memory(a) (x3)", "search_memory()"]


def test_only_a_memory_run_held_for_the_next_turn_is_not_waited_for() -> None:
    now = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)

    def run(status: str, due_in: timedelta) -> dict[str, str]:
        return {"status": status, "created_at": (now + due_in).isoformat()}

    assert held(run("pending", timedelta(seconds=HOLD_DELAY_SECONDS - 10)), now)
    assert not held(run("pending", timedelta(seconds=SETTLE_DELAY_SECONDS)), now)
    assert not held(run("pending", timedelta(minutes=2)), now)  # a retry of a failed batch
    assert not held(run("running", timedelta(seconds=HOLD_DELAY_SECONDS)), now)
