"""A profile value is kept only when the user's own words in the new messages support it.

A small real model filled the profile with guesses and copies: ``language: Portuguese`` (never
said), ``response_style: "length"`` (a word of the field's description), ``interests: ["martial
law"]``, and ``preferred_name: "Porto"`` (the city she had moved to). Extractors are asked to
set only what the user stated, but nothing made them; this does, whatever the model answers:

* a changed text value (or a new list element) must share a word with what the user said in
  the new messages (the stemmed content words recall's BM25 uses, so "nurses" supports
  "nurse", and "Lisbon" supports "Europe/Lisbon");
* a field naming the user (``name``, ``preferred_name``, ``first_name``, ...) must be introduced
  as their name: "I'm Ana", "my name is Ana", "call me Ana", "Ana here";
* an interest must come from a sentence in which the user says they like it ("I love hiking"),
  not from any word they used ("moving" from "I moved to Porto");
* a timezone must be an IANA name ("Porto" is a city, not a timezone);
* a number must appear as such; other values (true/false) cannot be checked and are kept.

Unsupported changes are dropped (the stored value stays) and counted in the run's report.
Clearing a value is a change too: it needs the user to have talked about it.
"""

import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from memory import lexical

USER_NAME_FIELDS = frozenset({"name", "preferred_name", "full_name", "first_name", "last_name", "nickname"})
INTEREST_FIELDS = frozenset({"interests", "hobbies"})
_INTEREST_CUES = re.compile(
    r"\b(?:like|likes|love|loves|enjoy|enjoys|into|fan of|passion|hobby|hobbies|interested|interest|"
    r"care about|favou?rite|keen on|fond of)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n")
_NAME_CUES = r"(?:i'm|i am|im|my name is|my name's|name is|call me|this is|it's|i go by|known as)"


def _is_timezone(value: str) -> bool:
    """An IANA timezone name ("Europe/Lisbon"), not a place the model put there ("Porto")."""
    known = zoneinfo.available_timezones()
    if known:
        return value.strip() in known
    # No timezone database on this system: the shape of one will do.
    return re.fullmatch(r"UTC|[A-Z][A-Za-z_]+(?:/[A-Za-z_+-]+)+", value.strip()) is not None


@dataclass
class Evidence:
    """What the user said in the new messages, and the values of a document dropped for lack of it."""

    text: str
    dropped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._terms = frozenset(lexical.terms(self.text))
        # The words of the sentences in which the user says they like something.
        self._liked = frozenset(
            term
            for sentence in _SENTENCE.split(self.text)
            if _INTEREST_CUES.search(sentence)
            for term in lexical.terms(sentence)
        )

    def supports(self, field_name: str, value: Any) -> bool:
        """Whether the user's words support ``value`` for ``field_name``."""
        if isinstance(value, bool):
            return True
        if isinstance(value, int | float):
            return re.search(rf"(?<![\d.]){re.escape(str(value))}(?![\d])", self.text) is not None
        if not isinstance(value, str) or not value.strip():
            return False
        if field_name.lower() in USER_NAME_FIELDS:
            pattern = rf"\b{_NAME_CUES}\s+{re.escape(value.strip())}\b|\b{re.escape(value.strip())}\s+here\b"
            return re.search(pattern, self.text, re.IGNORECASE) is not None
        if field_name.lower() == "timezone" and not _is_timezone(value):
            return False
        if field_name.lower() in INTEREST_FIELDS:
            # An interest is something the user said they like, not any word they used ("moving"
            # from "I moved to Porto", "nurse" from "I work as a nurse").
            return bool(frozenset(lexical.terms(value)) & self._liked)
        return self.mentions(value)

    def mentions(self, value: Any) -> bool:
        """Whether the user talked about ``value`` at all (so that removing it may be right)."""
        return bool(frozenset(lexical.terms(str(value))) & self._terms)

    def filter_document(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """``after`` with every change the user's words do not support reverted to ``before``."""
        kept = dict(after)
        for name in set(before) | set(after):
            old, new = before.get(name), after.get(name)
            if old == new:
                continue
            if isinstance(new, list) or isinstance(old, list):
                kept[name] = self._filter_list(name, old if isinstance(old, list) else [], new)
            elif new is None or new == "":
                if not self.mentions(old):
                    self.dropped.append(f"{name}: cleared")
                    kept[name] = old
            elif not self.supports(name, new):
                self.dropped.append(f"{name}: {new!r}")
                if name in before:
                    kept[name] = old
                else:
                    del kept[name]
        return kept

    def _filter_list(self, name: str, old: list[Any], new: Any) -> list[Any]:
        new_items = new if isinstance(new, list) else []
        result = [item for item in old if item in new_items or not self.mentions(item)]
        for item in new_items:
            if item in result:
                continue
            if self.supports(name, item):
                result.append(item)
            else:
                self.dropped.append(f"{name}: {item!r}")
        return result
