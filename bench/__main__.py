"""Run the benchmarks and print one report: ``python -m bench [--quick] [--only NAME ...]``.

``--quick`` is a smoke run (fewer iterations, smaller bursts) that finishes in under a minute;
the full run takes a few minutes on two cores. Progress goes to stderr, the report to stdout.
"""

import argparse
import asyncio
import logging
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from bench import (
    Section,
    background_cost,
    background_isolation,
    debounce,
    progress,
    recall_latency,
    turn_overhead,
    write_throughput,
)

BENCHMARKS: dict[str, Callable[[bool], Awaitable[Section]]] = {
    "turn_overhead": turn_overhead.run,
    "background_cost": background_cost.run,
    "debounce": debounce.run,
    "recall_latency": recall_latency.run,
    "write_throughput": write_throughput.run,
    "background_isolation": background_isolation.run,
}


async def _run_all(names: list[str], quick: bool) -> tuple[list[Section], bool]:
    sections: list[Section] = []
    ok = True
    for name in names:
        start = time.perf_counter()
        try:
            section = await BENCHMARKS[name](quick)
        except Exception as error:
            ok = False
            traceback.print_exc()
            section = Section(title=f"{name}: FAILED", columns=[], notes=[f"{type(error).__name__}: {error}"])
        elapsed = time.perf_counter() - start
        section.notes.append(f"Benchmark wall time: {elapsed:.1f} s.")
        progress(f"{name} done in {elapsed:.1f} s")
        sections.append(section)
    return sections, ok


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer iterations (< 60 s)")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only these benchmarks (repeatable)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = args.only or list(BENCHMARKS)
    start = time.perf_counter()
    sections, ok = asyncio.run(_run_all(names, args.quick))
    header = (
        f"Memory service benchmarks ({'quick' if args.quick else 'full'} run) - "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"total {time.perf_counter() - start:.0f} s"
    )
    print(header)
    print()
    print("\n\n".join(section.render() for section in sections))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
