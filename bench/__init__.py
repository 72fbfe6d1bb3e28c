"""Benchmarks of the memory service; run them all with ``python -m bench`` (``--quick`` to smoke-test).

Each benchmark module exposes ``async def run(quick: bool) -> Section``. Figures are printed,
never asserted: machines are shared and noisy, so every comparison is a ratio of two
figures measured in the same run, interleaved where possible.
"""

import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Section:
    """One benchmark's part of the report: a table and notes on how to read it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # One machine-readable line the runner prints after the whole report, so that it is the last line
    # of stdout whatever else ran (e.g. ``locomo_recall: recall@5=...``).
    final_line: str | None = None

    def render(self) -> str:
        """The section as plain text: a title, an aligned table, then the notes."""
        lines = [self.title, "=" * len(self.title)]
        if self.rows:
            widths = [max(len(self.columns[i]), *(len(row[i]) for row in self.rows)) for i in range(len(self.columns))]

            def line(cells: Sequence[str]) -> str:
                first = cells[0].ljust(widths[0])
                rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
                return "  ".join([first, *rest]).rstrip()

            lines.append(line(self.columns))
            lines.append("  ".join("-" * width for width in widths))
            lines.extend(line(row) for row in self.rows)
        lines.extend(f"* {note}" for note in self.notes)
        return "\n".join(lines)


def progress(message: str) -> None:
    """Progress goes to stderr, so that stdout holds only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN when empty)."""
    return statistics.median(values) if values else math.nan
