"""Soak: a million mixed calls through one gateway; does it hold more memory, fds, connections or tasks?

Starts the stub DynamoDB (bench/stub_dynamodb.py) and a gateway process in front of it
(`--workers N`: each worker is watched), then drives `--calls` calls in two phases: a
warm-up (`--warm-up`, 10%) and the rest. Between and after them, once the gateway is idle
again, it takes a snapshot of each serving process (tests/support/process_state.py: RSS,
open fds, TCP connections by peer, the event loop's task count from /metrics); during the
second phase, one every `--sample-s`. Prints a table, writes JSON to bench/results/, and
exits 1 if, from the warm-up snapshot to the final one, RSS grew by more than `--max-rss-growth-mb`
(10 MB), or the tasks, the fds (beyond the DynamoDB pool's), the callers' connections or the
connections left half-closed grew, or the DynamoDB pool holds more than its size; exits 2 if
more than 0.1% of the calls ended with a status their kind does not expect (a soak of failing
calls proves nothing).

The calls: ghz lanes, each a kind of call re-run in chunks (every chunk opens and closes its
own connections, so channels come and go all along), and one Python lane for what ghz cannot
do. ghz, not Python clients, makes the bulk: the gateway needs a core of this 2-core VM for
itself, and ghz drives it at full speed from little of the other, where a Python client
would need about a core per thousand calls a second. The lanes: every unary operation with
keys spread over a million partition keys, a short ParallelScan now and then (4 segments of
2 pages of 100 items), validation failures, deadlines of 3, 10 and 40 ms that run out before,
while and after the gateway calls DynamoDB, a ParallelScan cut by its deadline; the Python
lane (tests/support/mixed_calls.py) cancels unary calls and streams mid-way and closes its
channel every 97 calls with calls still in flight. The lanes whose calls end at the caller
(deadlines, cancels) keep to their share of the rate the warm-up reached (see keep_pace); the
others are bounded by their concurrency.

    .venv/bin/python bench/soak.py                      # 1,000,000 calls (15 to 30 minutes here)
    .venv/bin/python bench/soak.py --max-minutes 28     # as many of them as start within 28 minutes
    .venv/bin/python bench/soak.py --calls 100000       # a quicker look
    .venv/bin/python bench/soak.py --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]
from harness import GATEWAY_ENV, free_port, gateway_command, process, stub_command  # noqa: E402

from tests.support import mixed_calls  # noqa: E402
from tests.support.process_state import Snapshot, snapshot  # noqa: E402

SERVICE = "dynamo_gateway.v1.DynamoDBService"
_KEY = {"pk": {"S": "user#{{randomInt 0 1000000}}"}, "sk": {"S": "order#{{randomInt 0 100}}"}}
_ITEM = {**_KEY, "status": {"S": "shipped"}, "amount": {"N": "{{.RequestNumber}}"}, "note": {"S": "x" * 64}}
_WRITES = [{"put_request": {"item": {**_ITEM, "sk": {"S": f"order#{i}"}}}} for i in range(25)]
_KEYS = [{"attributes": {**_KEY, "sk": {"S": f"order#{i}"}}} for i in range(10)]
OK = frozenset({"OK"})
OK_OR_LATE = frozenset({"OK", "DEADLINE_EXCEEDED"})
REFUSED = frozenset({"INVALID_ARGUMENT"})


@dataclass(frozen=True)
class Lane:
    """One kind of call, made by ghz at `concurrency`; `weight` is its share of the ghz calls."""

    name: str
    method: str
    request: dict[str, Any]
    weight: float
    concurrency: int
    timeout: str = "30s"
    expected: frozenset[str] = OK

    @property
    def ends_early(self) -> bool:
        """Its calls end at the caller's deadline, whether the gateway got to them or not."""
        return self.timeout != Lane.timeout


LANES = (
    Lane("GetItem", "GetItem", {"table_name": "bench", "key": _KEY}, 30, 14),
    Lane("PutItem", "PutItem", {"table_name": "bench", "item": _ITEM}, 17, 8),
    Lane(
        "UpdateItem",
        "UpdateItem",
        {
            "table_name": "bench",
            "key": _KEY,
            "update_expression": "SET #s = :s ADD amount :one",
            "expression_attribute_names": {"#s": "status"},
            "expression_attribute_values": {":s": {"S": "returned"}, ":one": {"N": "1"}},
        },
        9,
        5,
    ),
    Lane("DeleteItem", "DeleteItem", {"table_name": "bench", "key": _KEY}, 5, 3),
    # The stub answers 100 items: one Query costs the gateway about ten GetItems.
    Lane(
        "Query",
        "Query",
        {
            "table_name": "bench",
            "key_condition_expression": "pk = :pk",
            "expression_attribute_values": {":pk": {"S": "user#{{randomInt 0 1000000}}"}},
            "limit": 100,
        },
        2,
        2,
    ),
    Lane("BatchGetItem", "BatchGetItem", {"request_items": {"bench": {"keys": _KEYS}}}, 5, 3),
    Lane("BatchWriteItem", "BatchWriteItem", {"request_items": {"bench": {"requests": _WRITES}}}, 5, 3),
    Lane("ParallelScan", "ParallelScan", {"table_name": "bench", "total_segments": 4}, 0.1, 1),
    Lane(
        "ParallelScan 15 ms deadline",
        "ParallelScan",
        {"table_name": "bench", "total_segments": 4},
        0.1,
        1,
        "15ms",
        OK_OR_LATE,
    ),
    Lane("GetItem without key", "GetItem", {"table_name": "bench"}, 3, 2, expected=REFUSED),
    Lane(
        "PutItem bad table name",
        "PutItem",
        {"table_name": "not a table!", "item": _ITEM},
        3,
        2,
        expected=REFUSED,
    ),
    Lane("Query without condition", "Query", {"table_name": "bench"}, 2, 1, expected=REFUSED),
    Lane("GetItem 3 ms deadline", "GetItem", {"table_name": "bench", "key": _KEY}, 3, 3, "3ms", OK_OR_LATE),
    Lane(
        "PutItem 10 ms deadline", "PutItem", {"table_name": "bench", "item": _ITEM}, 3, 3, "10ms", OK_OR_LATE
    ),
    Lane(
        "BatchWriteItem 40 ms deadline",
        "BatchWriteItem",
        {"request_items": {"bench": {"requests": _WRITES}}},
        2,
        3,
        "40ms",
        OK_OR_LATE,
    ),
)
PYTHON_LANE = "python: cancelled calls, closed channels"
# The Python lane's deck: cancellations, and ordinary calls for the channel closes to cut.
PYTHON_WEIGHTS = {mixed_calls.CANCELLED: 6, mixed_calls.SCAN_CANCELLED: 1, "GetItem": 2, "PutItem": 1}
PYTHON_CALLS_PER_CHANNEL = 97  # prime to the deck's 10 cards
PYTHON_CONCURRENCY = 6
CHUNK_S = 8.0  # about how long one ghz run of a lane lasts, at the rates this VM reaches


@dataclass
class Progress:
    stop_at: float
    """Monotonic time after which no lane starts another chunk (--max-minutes)."""
    calls: int = 0
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def out_of_time(self) -> bool:
        return time.monotonic() > self.stop_at


def status_name(ghz_code: str) -> str:
    """ghz's spelling of a status (DeadlineExceeded, Canceled) as gRPC's (DEADLINE_EXCEEDED, CANCELLED)."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", ghz_code).upper()
    return "CANCELLED" if name == "CANCELED" else name


@dataclass
class Sample:
    phase: str
    elapsed_s: float
    calls: int
    processes: dict[int, Snapshot]

    def total(self, name: str) -> float:
        return float(sum(getattr(s, name) for s in self.processes.values()))


@dataclass
class Gateway:
    processes: dict[int, int]
    """Serving pid -> its metrics port."""
    port: int
    stub_port: int

    def snapshots(self) -> dict[int, Snapshot]:
        return {
            pid: snapshot(pid, metrics, self.port, self.stub_port) for pid, metrics in self.processes.items()
        }


def ghz_command(ghz: str, target: str, lane: Lane, calls: int) -> list[str]:
    connections = max(1, lane.concurrency // 4)
    return [
        ghz, "--insecure", "--call", f"{SERVICE}.{lane.method}", "--data", json.dumps(lane.request),
        "-n", str(calls), "--concurrency", str(min(lane.concurrency, calls)),
        "--connections", str(min(connections, calls)), "--timeout", lane.timeout,
        "--format", "json", target,
    ]  # fmt: skip


async def keep_pace(began: float, calls: int, per_s: float) -> None:
    """Waits until `calls` calls at `per_s` a second would have taken since `began`.

    A lane whose calls end early at the caller (a deadline of 3 ms, a cancel) would otherwise
    send them faster than the gateway serves the rest: they would wait by thousands in gRPC's
    queue, and the soak would measure that overload instead of what the calls leave behind. The
    other lanes need no pace: each has at most `concurrency` calls in flight.
    """
    await asyncio.sleep(max(0.0, began + calls / per_s - time.monotonic()))


async def run_lane(
    ghz: str, target: str, lane: Lane, calls: int, chunk: int, per_s: float, progress: Progress
) -> None:
    began, done = time.monotonic(), 0
    while done < calls and not progress.out_of_time():
        n = min(chunk, calls - done)
        child = await asyncio.create_subprocess_exec(
            *ghz_command(ghz, target, lane, n), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await child.communicate()
        try:
            codes = json.loads(out).get("statusCodeDistribution") or {}
        except ValueError:
            raise RuntimeError(f"ghz failed on {lane.name}: {err.decode(errors='replace')[-2000:]}") from None
        for code, count in codes.items():
            progress.outcomes[lane.name, status_name(code)] += count
        done += n
        progress.calls += n
        if lane.ends_early:
            await keep_pace(began, done, per_s)


async def run_python_lane(target: str, calls: int, first: int, per_s: float, progress: Progress) -> None:
    began, done = time.monotonic(), 0
    while done < calls and not progress.out_of_time():
        n = min(max(1, round(per_s * CHUNK_S)), calls - done)
        outcomes = await mixed_calls.drive(
            target,
            n,
            concurrency=PYTHON_CONCURRENCY,
            calls_per_channel=PYTHON_CALLS_PER_CHANNEL,
            weights=PYTHON_WEIGHTS,
            first=first + done,
        )
        for (kind, code), count in outcomes.items():
            progress.outcomes[f"{PYTHON_LANE}: {kind}", code] += count
        done += n
        progress.calls += n
        await keep_pace(began, done, per_s)


async def phase(
    ghz: str, target: str, calls: int, python_share: float, rate: float, first: int, progress: Progress
) -> None:
    """`calls` calls over every lane at once, each lane's share by its weight; those that end early
    at their share of `rate` (calls/s)."""
    python_calls = round(calls * python_share)
    total_weight = sum(lane.weight for lane in LANES)
    shares = [round((calls - python_calls) * lane.weight / total_weight) for lane in LANES]
    shares[0] += calls - python_calls - sum(shares)  # what rounding left over
    runs = [run_python_lane(target, python_calls, first, rate * python_share, progress)]
    for lane, lane_calls in zip(LANES, shares, strict=True):
        per_s = rate * (1 - python_share) * lane.weight / total_weight
        # Chunks of about CHUNK_S, so connections turn over all along.
        chunk = max(lane.concurrency, round(per_s * CHUNK_S))
        runs.append(run_lane(ghz, target, lane, lane_calls, chunk, per_s, progress))
    await asyncio.gather(*runs)


async def when_idle(
    gateway: Gateway, settle_s: float, wait_s: float, before: Sample | None
) -> dict[int, Snapshot]:
    """Snapshots once no caller is connected and, when `before` is given, nothing exceeds it (or
    after `wait_s`); first `settle_s` more, for handlers of cancelled calls to finish."""
    deadline = time.monotonic() + wait_s
    while True:
        now = await asyncio.to_thread(gateway.snapshots)
        done = all(s.caller_connections == 0 for s in now.values())
        if before is not None:
            done = done and not leaks(before.processes, now, pool=10**9)
        if done or time.monotonic() > deadline:
            if settle_s:
                await asyncio.sleep(settle_s)
                settle_s = 0
                continue
            return now
        await asyncio.sleep(0.5)


def leaks(warm: dict[int, Snapshot], end: dict[int, Snapshot], pool: int, rss_mb: float = 1e9) -> list[str]:
    """What grew from `warm` to `end`, process by process."""
    found = []
    for pid, before in warm.items():
        after = end[pid]
        if after.rss_mb - before.rss_mb > rss_mb:
            found.append(f"pid {pid}: RSS grew {after.rss_mb - before.rss_mb:.1f} MB")
        for name in ("tasks", "fds_besides_backend", "caller_connections", "close_wait"):
            if getattr(after, name) > getattr(before, name):
                found.append(f"pid {pid}: {name} {getattr(before, name)} -> {getattr(after, name)}")
        if after.backend_connections > pool:
            found.append(f"pid {pid}: {after.backend_connections} DynamoDB connections, pool of {pool}")
    return found


async def sample_every(
    gateway: Gateway, seconds: float, began: float, progress: Progress, samples: list[Sample]
) -> None:
    while True:
        await asyncio.sleep(seconds)
        taken = Sample(
            "soak", time.monotonic() - began, progress.calls, await asyncio.to_thread(gateway.snapshots)
        )
        samples.append(taken)
        print_row(taken)


def print_header() -> None:
    print(
        f"{'phase':8} {'elapsed s':>9} {'calls':>9} {'calls/s':>8} {'RSS MB':>7} {'fds':>5}"
        f" {'callers':>7} {'dynamodb':>8} {'other':>5} {'tasks':>6}"
    )


def print_row(sample: Sample) -> None:
    rate = sample.calls / sample.elapsed_s if sample.elapsed_s else 0.0
    print(
        f"{sample.phase:8} {sample.elapsed_s:9.0f} {sample.calls:9,d} {rate:8.0f} {sample.total('rss_mb'):7.1f}"
        f" {sample.total('fds'):5.0f} {sample.total('caller_connections'):7.0f}"
        f" {sample.total('backend_connections'):8.0f} {sample.total('other_connections'):5.0f}"
        f" {sample.total('tasks'):6.0f}",
        flush=True,
    )


def serving_processes(parent: int, workers: int, metrics_port: int) -> dict[int, int]:
    """pid -> metrics port of each process that serves: the gateway, or each of its workers."""
    if workers == 1:
        return {parent: metrics_port}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if len(children) == workers:
            found = {}
            for child in map(int, children):
                environ = dict(
                    entry.split("=", 1)
                    for entry in Path(f"/proc/{child}/environ").read_text().split("\0")
                    if "=" in entry
                )
                found[child] = metrics_port + int(environ["DYNAMO_GATEWAY_WORKER_INDEX"])
            return found
        time.sleep(0.2)
    raise RuntimeError(f"the gateway did not start {workers} workers")


async def soak(args: argparse.Namespace, ghz: str, gateway: Gateway) -> tuple[list[Sample], Progress, float]:
    target = f"127.0.0.1:{gateway.port}"
    progress = Progress(stop_at=time.monotonic() + args.max_minutes * 60)
    samples: list[Sample] = []
    began = time.monotonic()
    warm_calls = round(args.calls * args.warm_up)
    await phase(ghz, target, warm_calls, args.python_share, args.warm_up_rate, 0, progress)
    rate = warm_calls / (time.monotonic() - began)
    warm = Sample(
        "warm",
        time.monotonic() - began,
        progress.calls,
        await when_idle(gateway, 2.0, args.idle_wait_s, None),
    )
    samples.append(warm)
    print_row(warm)
    sampler = asyncio.create_task(sample_every(gateway, args.sample_s, began, progress, samples))
    try:
        await phase(ghz, target, args.calls - warm_calls, args.python_share, rate, warm_calls, progress)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    loaded_s = time.monotonic() - began
    end = Sample("end", loaded_s, progress.calls, await when_idle(gateway, 2.0, args.idle_wait_s, warm))
    samples.append(end)
    print_row(end)
    return samples, progress, loaded_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--warm-up", type=float, default=0.1, help="share of the calls before the baseline")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-concurrency", type=int, default=32, help="the gateway's DynamoDB pool")
    parser.add_argument("--stub-latency-ms", type=float, default=1.0)
    parser.add_argument("--python-share", type=float, default=0.03, help="share of the Python lane")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument(
        "--idle-wait-s", type=float, default=30.0, help="longest wait for the gateway to go idle"
    )
    parser.add_argument("--max-rss-growth-mb", type=float, default=10.0)
    parser.add_argument(
        "--max-minutes", type=float, default=float("inf"), help="start no more calls after this long"
    )
    parser.add_argument(
        "--warm-up-rate", type=float, default=600.0, help="calls/s the warm-up offers (then: what it reached)"
    )
    args = parser.parse_args()
    ghz = shutil.which("ghz", path=f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    if ghz is None:
        sys.exit("ghz not found: run scripts/bootstrap.sh bench")
    stub_port, port, metrics_port = free_port(), free_port(), free_port()
    gateway_cmd = gateway_command(
        stub_port, port, "--metrics-port", str(metrics_port), "--max-concurrency", str(args.max_concurrency),
        "--workers", str(args.workers),
    )  # fmt: skip
    stub_cmd = stub_command(stub_port, "--latency-ms", str(args.stub_latency_ms), "--scan-pages", "2")
    print(f"soak: {args.calls:,d} calls, {args.warm_up:.0%} of them warm-up, {args.workers} worker(s)")
    print_header()
    with process(stub_cmd, stub_port), process(gateway_cmd, port, GATEWAY_ENV) as parent:
        gateway = Gateway(serving_processes(parent.pid, args.workers, metrics_port), port, stub_port)
        samples, progress, loaded_s = asyncio.run(soak(args, ghz, gateway))

    warm, end = samples[0], samples[-1]
    found = leaks(warm.processes, end.processes, args.max_concurrency, args.max_rss_growth_mb)
    expected = {lane.name: lane.expected for lane in LANES} | {
        f"{PYTHON_LANE}: {kind}": codes for kind, codes in mixed_calls.EXPECTED.items()
    }
    unexpected = {
        f"{lane} {code}": n for (lane, code), n in progress.outcomes.items() if code not in expected[lane]
    }
    print(
        f"\n{progress.calls:,d} calls in {loaded_s:.0f} s ({progress.calls / loaded_s:.0f} calls/s, settling included)"
    )
    for pid in warm.processes:
        before, after = warm.processes[pid], end.processes[pid]
        print(
            f"pid {pid}: RSS {before.rss_mb:.1f} -> {after.rss_mb:.1f} MB ({after.rss_mb - before.rss_mb:+.1f},"
            f" peak {after.peak_rss_mb:.1f});"
            f" fds {before.fds} -> {after.fds} (besides the DynamoDB pool {before.fds_besides_backend} ->"
            f" {after.fds_besides_backend}); callers' connections {before.caller_connections} ->"
            f" {after.caller_connections}; DynamoDB connections {before.backend_connections} ->"
            f" {after.backend_connections} (pool {args.max_concurrency}); half-closed {before.close_wait} ->"
            f" {after.close_wait}; tasks {before.tasks} -> {after.tasks}"
        )
    by_code: collections.Counter[str] = collections.Counter()
    for (_, code), n in progress.outcomes.items():
        by_code[code] += n
    print(f"outcomes: {dict(by_code.most_common())}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    path.write_text(
        json.dumps(
            {
                "machine": machine,
                "settings": vars(args),
                "calls": progress.calls,
                "seconds": loaded_s,
                "samples": [
                    {**asdict(s), "processes": {str(pid): asdict(snap) for pid, snap in s.processes.items()}}
                    for s in samples
                ],
                "outcomes": [
                    {"lane": lane, "code": code, "calls": n}
                    for (lane, code), n in sorted(progress.outcomes.items())
                ],
                "leaks": found,
                "unexpected_outcomes": unexpected,
            },
            indent=2,
        )
    )
    print(f"written: {path.relative_to(ROOT)}")
    if found:
        print("LEAK: " + "; ".join(found))
        sys.exit(1)
    if sum(unexpected.values()) > progress.calls / 1000:
        print(f"calls ended as their kind does not expect: {unexpected}")
        sys.exit(2)
    print(f"no growth: RSS within {args.max_rss_growth_mb:g} MB, no more tasks, fds or connections")


if __name__ == "__main__":
    main()
