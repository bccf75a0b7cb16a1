"""A rolling restart under load: SIGTERM one gateway while 200 callers and two ParallelScans use it.

The scenario is tests/support/rolling_restart.py (bench/restart.py runs it for figures). What
the issue asks, checked with and without `--workers`, on both emulators:
- no unary call fails, neither those in flight at the SIGTERM nor those sent after it;
- health turns NOT_SERVING while the stopped gateway still accepts new connections;
- each ParallelScan, cut by the shutdown, continues on the other replica from the resume keys
  in its ScanInterrupted detail: every item seen exactly once.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.support.rolling_restart import ITEMS, restart_under_load


@pytest.mark.parametrize(
    ("kind", "workers"), [("moto", 1), ("dynalite", 2)], ids=["moto", "dynalite-workers"]
)
async def test_sigterm_under_load_loses_no_call_and_no_scanned_item(
    kind: str, workers: int, tmp_path: pathlib.Path
) -> None:
    outcome = await restart_under_load(kind, workers, tmp_path)
    assert outcome.exit_code == 0
    assert outcome.failures == [], outcome.failures[:5]
    assert outcome.calls_after_exit > 0, "no call reached the other gateway: the test proved nothing"
    for scan in outcome.scans:
        assert sorted(scan.keys) == [f"item-{n:03d}" for n in range(ITEMS)]  # each exactly once
        assert scan.pages_after_stop > 0, "the scan ended before the SIGTERM: nothing was resumed"
    assert outcome.not_serving_while_listening, "health never said NOT_SERVING while the listener was open"
