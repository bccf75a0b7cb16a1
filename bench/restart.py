"""Restart under load: SIGTERM a gateway while 200 callers and two ParallelScans use it, N times.

The scenario of tests/e2e/test_restart_under_load.py (tests/support/rolling_restart.py): two
gateways in front of one emulator, the callers' channels on the first while it listens;
the first gets SIGTERM. Prints per run: unary call pairs answered and failed, how many the
stopping gateway refused as not taken (the client sent them again), the slowest pair around
the stop, whether health said NOT_SERVING while the listener was open, and each scan's items
(all 400, each once, is a clean resume). Never pass/fail: the check is the test.

    .venv/bin/python bench/restart.py [--runs 5] [--kinds moto dynalite] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.rolling_restart import CALLERS, ITEMS, restart_under_load


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["moto", "dynalite"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    print(f"{CALLERS} callers (PutItem then GetItem), 2 ParallelScans of {ITEMS} items; SIGTERM after 0.7 s")
    print(
        "| emulator | workers | run | pairs answered | failed | refused, sent again | slowest pair | NOT_SERVING first | scans clean |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in args.kinds:
        for workers in args.workers:
            for run in range(1, args.runs + 1):
                with tempfile.TemporaryDirectory() as tmp:
                    outcome = await restart_under_load(kind, workers, Path(tmp))
                clean = all(sorted(s.keys) == [f"item-{n:03d}" for n in range(ITEMS)] for s in outcome.scans)
                print(
                    f"| {kind} | {workers} | {run} | {outcome.calls:,} | {len(outcome.failures)} | {outcome.refused} "
                    f"| {outcome.slowest_call_s:.2f} s | {outcome.not_serving_while_listening} | {clean} |",
                    flush=True,
                )
                for failure in outcome.failures[:3]:
                    print(f"    {failure}")


if __name__ == "__main__":
    asyncio.run(main())
