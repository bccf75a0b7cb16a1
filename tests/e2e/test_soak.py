"""Soak, bounded: 12,000 mixed calls through a gateway process leave no task, fd or connection behind.

The gateway runs as a process (aws backend) in front of bench/stub_dynamodb.py, a stub
DynamoDB cheap enough that the gateway does the work. The calls (tests/support/mixed_calls.py)
cover every operation and the paths that end early: validation failures, deadlines that
run out, calls and streams the caller cancels, channels closed under their calls. After a
warm-up, once the gateway is idle, a snapshot of what it holds (tests/support/process_state.py);
after the rest of the calls, once idle again, it must hold no more asyncio tasks, open fds or
connections. Memory is bench/soak.py's to judge: a million calls tell growth from noise,
twelve thousand do not. No timing assertion: waiting for idle polls up to a generous bound.
"""

from __future__ import annotations

import collections
import contextlib
import json
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from tests.e2e.test_readme import ROOT, _env, _spawn, _stop
from tests.support.mixed_calls import CANCELLED, EXPECTED, INVALID, SHORT_DEADLINE, drive
from tests.support.ports import LOGGED_PORT_ENV, failed_to_start, logged_port
from tests.support.process_state import Snapshot, snapshot

WARM_UP_CALLS = 2_000
SOAK_CALLS = 10_000
# Smaller than the callers (mixed_calls' 32), so the warm-up already fills the DynamoDB pool.
BACKEND_POOL = 16
IDLE_WAIT_S = 20.0  # for connections to close and cancelled handlers to finish
_STUB_PORT = re.compile(r"stub listening on (\d+)")
_METRICS_PORT = re.compile(r"metrics on http://\S+:(\d+)/metrics")


def _port_in_log(process: subprocess.Popen[bytes], log: pathlib.Path, pattern: re.Pattern[str]) -> int:
    """The port `pattern` finds in `log`, in a plain or a JSON log line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                line = json.loads(line)["message"]
            if found := pattern.search(line):
                return int(found[1])
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise failed_to_start(process, log, f"logged no {pattern.pattern!r}")


@contextlib.contextmanager
def _serving(command: list[str], log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    env = _env(AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_REGION="us-east-1")
    process = _spawn(command, log, {**env, **LOGGED_PORT_ENV})
    try:
        yield process
    finally:
        _stop(process)


def _when_idle(take: Callable[[], Snapshot], idle: Callable[[Snapshot], bool]) -> Snapshot:
    """The first snapshot that `idle` accepts, or the last one taken within IDLE_WAIT_S."""
    deadline = time.monotonic() + IDLE_WAIT_S
    while not idle(now := take()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return now


async def test_mixed_calls_leave_no_task_fd_or_connection_behind(tmp_path: pathlib.Path) -> None:
    stub_command = [
        sys.executable,
        str(ROOT / "bench" / "stub_dynamodb.py"),
        "--port",
        "0",
        "--scan-pages",
        "2",
    ]
    with _serving(stub_command, tmp_path / "stub.log") as stub:
        stub_port = _port_in_log(stub, tmp_path / "stub.log", _STUB_PORT)
        gateway_command = [
            sys.executable, "-m", "dynamo_gateway_server", "--backend", "aws",
            "--endpoint-url", f"http://127.0.0.1:{stub_port}", "--port", "0", "--metrics-port", "0",
            "--max-concurrency", str(BACKEND_POOL),
        ]  # fmt: skip
        log = tmp_path / "gateway.log"
        with _serving(gateway_command, log) as gateway:
            port = logged_port(gateway, log)
            metrics_port = _port_in_log(gateway, log, _METRICS_PORT)

            def take() -> Snapshot:
                return snapshot(gateway.pid, metrics_port, port, stub_port)

            target = f"127.0.0.1:{port}"
            outcomes = await drive(target, WARM_UP_CALLS, calls_per_channel=499)
            before = _when_idle(take, lambda now: now.caller_connections == 0)
            outcomes += await drive(target, SOAK_CALLS, calls_per_channel=499, first=WARM_UP_CALLS)
            after = _when_idle(
                take,
                lambda now: (
                    now.caller_connections == 0
                    and now.tasks <= before.tasks
                    and now.fds_besides_backend <= before.fds_besides_backend
                ),
            )

    # The calls were what they were meant to be: the early endings happened, nothing else went wrong.
    ended: dict[str, set[str]] = collections.defaultdict(set)
    for kind, code in outcomes:
        ended[kind].add(code)
    assert all(codes <= EXPECTED[kind] for kind, codes in ended.items()), outcomes
    assert "INVALID_ARGUMENT" in ended[INVALID] and "DEADLINE_EXCEEDED" in ended[SHORT_DEADLINE], outcomes
    assert "CANCELLED" in ended[CANCELLED] and "OK" in ended["GetItem"], outcomes
    # Nothing the calls made outlives them.
    assert after.tasks <= before.tasks, (before, after)
    assert after.fds_besides_backend <= before.fds_besides_backend, (before, after)
    assert after.caller_connections == 0 and after.close_wait == 0, (before, after)
    assert after.backend_connections <= BACKEND_POOL, (before, after)
