"""Acceptance: `dgw export` of a 100,000-item table streams with bounded memory and, killed
midway with SIGKILL, resumes from its per-segment resume keys without losing or duplicating
an item. The table is loaded with `dgw import` (100,000 lines through BatchWriteItem).

Runs against dynalite behind a gateway: its scans seek to the resume key, so a
100,000-item export takes seconds (moto rescans the table for every page).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.compat import harness, servers

ITEMS = 100_000
# ~450 bytes a line: the export (~45 MB) is far larger than the memory the exporter may use.
PAD = "x" * 400
MEMORY_BOUND_BYTES = 15 * 1024 * 1024

# Runs dgw in-process and reports its peak memory (ru_maxrss, KiB on Linux) on the last stderr line.
MEASURED_DGW = (
    "import resource, sys\n"
    "from dynamo_gateway.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    "print(f'maxrss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def big_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pathlib.Path]]:
    logs = tmp_path_factory.mktemp("export-resume")
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(servers.emulator("dynalite", logs))
        gateway = stack.enter_context(servers.gateway(emulator.endpoint_url, logs))
        control = harness.direct_client(emulator.endpoint_url)
        control.create_table(
            TableName="big",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        source = logs / "big.jsonl"
        with source.open("w") as file:
            for i in range(ITEMS):
                file.write(json.dumps({"pk": f"item#{i:06d}", "n": i, "pad": PAD}) + "\n")
        loaded = _dgw(
            gateway.target, "import", "big", "-i", str(source), "--batch-size", "500", "--concurrency", "8"
        )
        assert loaded.returncode == 0, loaded.stderr
        assert f"imported {ITEMS} items into big" in loaded.stderr
        yield gateway.target, logs


def _dgw(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MEASURED_DGW, "--target", target, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _peak_bytes(stderr: str) -> int:
    return int(stderr.strip().splitlines()[-1].removeprefix("maxrss_kib=")) * 1024


def test_killed_export_resumes_without_losing_or_duplicating(big_table: tuple[str, pathlib.Path]) -> None:
    target, logs = big_table
    output = logs / "export.jsonl"
    state = logs / "export.jsonl.state.json"
    baseline = _dgw(target, "describe", "big")
    assert baseline.returncode == 0, baseline.stderr

    export = ["--target", target, "export", "big", "-o", str(output), "--segments", "8", "--page-size", "500"]
    process = subprocess.Popen(
        [sys.executable, "-c", MEASURED_DGW, *export], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        checkpointed = 0
        while checkpointed < ITEMS * 0.1:
            assert process.poll() is None, f"export ended before it could be killed: {process.stderr.read()}"
            assert time.monotonic() < deadline, "the export made no progress"
            with contextlib.suppress(FileNotFoundError, ValueError):
                checkpointed = json.loads(state.read_text())["items"]
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)  # no chance to clean up: only the state file speaks
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
    interrupted = json.loads(state.read_text())
    assert 0 < interrupted["items"] < ITEMS
    assert any(s["key"] for s in interrupted["segments"].values()), "resume keys were recorded"
    assert output.stat().st_size >= interrupted["bytes"]  # pages after the checkpoint may be half-written

    resumed = _dgw(
        target, "export", "big", "-o", str(output), "--segments", "8", "--page-size", "500", "--resume"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"exported {ITEMS} items ({interrupted['items']} before resuming)" in resumed.stderr
    assert not state.exists()

    keys = []
    with output.open() as file:
        for line in file:
            item = json.loads(line)
            assert item["pad"] == PAD
            keys.append(item["pk"])
    assert len(keys) == ITEMS, "no item lost, none written twice"
    assert set(keys) == {f"item#{i:06d}" for i in range(ITEMS)}

    # Bounded memory: the resumed run wrote most of the ~45 MB file, yet grew little beyond a describe.
    written = output.stat().st_size - interrupted["bytes"]
    assert written > MEMORY_BOUND_BYTES
    growth = _peak_bytes(resumed.stderr) - _peak_bytes(baseline.stderr)
    print(f"export memory growth {growth / 1e6:.1f} MB for {written / 1e6:.1f} MB written")
    assert growth < MEMORY_BOUND_BYTES, (
        f"the exporter grew by {growth / 1e6:.0f} MB for {written / 1e6:.0f} MB written"
    )


def test_resume_refuses_a_state_of_another_export(big_table: tuple[str, pathlib.Path]) -> None:
    target, logs = big_table
    output = logs / "other.jsonl"
    state = logs / "other.jsonl.state.json"
    state.write_text(json.dumps({"version": 1, "table": "big", "dynamodb_json": False, "total_segments": 4}))
    mismatch = _dgw(target, "export", "big", "-o", str(output), "--segments", "8", "--resume")
    assert mismatch.returncode == 2
    assert "made with 4 segments, not 8" in mismatch.stderr
    fresh = _dgw(target, "export", "big", "-o", str(output))
    assert fresh.returncode == 2 and "shows an interrupted export" in fresh.stderr
    state.unlink()
    nothing = _dgw(target, "export", "big", "-o", str(output), "--resume")
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr
