"""Run the benchmarks and print one report: ``python -m bench [--quick] [--only NAME ...] [--data PATH]``.

``--quick`` is a smoke run (fewer iterations, smaller bursts) that finishes in under a minute;
the full run takes a few minutes on two cores. Progress goes to stderr, the report to stdout.
``locomo_recall`` and ``duplicate_threshold`` need a LoCoMo-format file (``--data PATH``) and the
``bench`` dependency group; without ``--data`` a run of all benchmarks leaves them out. ``real_model``
needs a model endpoint (``OPENAI_BASE_URL``, see ``bench/real_model.py``) and runs only when named
with ``--only``. A benchmark's machine-readable line (such as ``locomo_recall: recall@5=...``) is
printed after the whole report, as the last line of stdout.
"""

import argparse
import asyncio
import logging
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench import (
    Section,
    background_cost,
    background_isolation,
    debounce,
    duplicate_threshold,
    locomo_recall,
    multi_tenant,
    progress,
    real_model,
    recall_latency,
    turn_overhead,
    write_throughput,
)


@dataclass(frozen=True)
class Options:
    """What the command line asks of every benchmark."""

    quick: bool
    data: Path | None


BENCHMARKS: dict[str, Callable[[Options], Awaitable[Section]]] = {
    "turn_overhead": lambda options: turn_overhead.run(options.quick),
    "background_cost": lambda options: background_cost.run(options.quick),
    "debounce": lambda options: debounce.run(options.quick),
    "recall_latency": lambda options: recall_latency.run(options.quick),
    "multi_tenant": lambda options: multi_tenant.run(options.quick),
    "write_throughput": lambda options: write_throughput.run(options.quick),
    "background_isolation": lambda options: background_isolation.run(options.quick),
    locomo_recall.NAME: lambda options: locomo_recall.run(options.quick, options.data),
    duplicate_threshold.NAME: lambda options: duplicate_threshold.run(options.quick, options.data),
    real_model.NAME: lambda options: real_model.run(options.quick),
}
# Benchmarks that read a LoCoMo-format file (``--data``) and need the ``bench`` dependency group.
NEEDS_DATA = {locomo_recall.NAME, duplicate_threshold.NAME}


async def _run_all(names: list[str], options: Options) -> tuple[list[Section], bool]:
    sections: list[Section] = []
    ok = True
    for name in names:
        start = time.perf_counter()
        try:
            section = await BENCHMARKS[name](options)
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
    parser.add_argument(
        "--data", type=Path, metavar="PATH", help="a LoCoMo-format file (e.g. ../shared/data/locomo-dev.json)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = args.only or list(BENCHMARKS)
    for name in [name for name in names if name in NEEDS_DATA]:
        if args.only or args.data is not None:
            try:
                locomo_recall.check(args.data)
            except locomo_recall.MissingRequirement as error:
                parser.error(str(error))
        else:
            names.remove(name)
            command = locomo_recall.RUN_COMMAND.replace(locomo_recall.NAME, name)
            progress(f"{name} left out (no --data); to run it: {command}")
    if real_model.NAME in names:
        if args.only:
            try:
                real_model.check_environment()
            except real_model.MissingEndpoint as error:
                parser.error(str(error))
        else:
            names.remove(real_model.NAME)
            progress(f"{real_model.NAME} left out (it needs a model endpoint); to run it: {real_model.RUN_COMMAND}")
    start = time.perf_counter()
    sections, ok = asyncio.run(_run_all(names, Options(quick=args.quick, data=args.data)))
    header = (
        f"Memory service benchmarks ({'quick' if args.quick else 'full'} run) - "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"total {time.perf_counter() - start:.0f} s"
    )
    print(header)
    print()
    print("\n\n".join(section.render() for section in sections))
    final_lines = [section.final_line for section in sections if section.final_line is not None]
    if final_lines:
        print()
        print("\n".join(final_lines))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
