"""Instructions per call, counted by valgrind's callgrind: the gateway process, the gRPC floor, and
the calling service's process with each client library. Figures that hold from run to run.

This VM's wall-clock figures move by tens of percent between runs; instruction counts do not
move with the machine's speed or load. Each measured process runs under callgrind with
instrumentation off; for each workload this script warms it up, switches instrumentation on
(`callgrind_control -i on`), makes N calls one after another, dumps the count and switches it
off again, so startup and warm-up are left out and the figure is the N calls' instructions / N
(for a server, the median of `--rounds` such rounds).

- gateway: `python -m dynamo_gateway_server` on the stub DynamoDB (bench/stub_dynamodb.py),
  called from this process with the generated stubs: the gateway's whole process (gRPC's core,
  the servicer, every stage, the JSON client) per call;
- floor: bench/grpc_floor.py, the gateway's service on grpc.aio answering at once: what gRPC
  alone costs a server, for the workloads it answers;
- callers: bench/caller_cost.py, the calling process's instructions per call with the project's
  client and boto3 facade (to the gateway) and with aiobotocore, boto3 and aiodynamo (to the
  stub directly); also `lean`, the gateway's own DynamoDB client alone (its share of a call).

    .venv/bin/python bench/instructions.py                  # the table, JSON in bench/results/
    .venv/bin/python bench/instructions.py --check          # and compare with the committed baseline
    .venv/bin/python bench/instructions.py --update-baseline

`--check` exits 1 when a figure exceeds bench/instructions_baseline.json by more than
`--tolerance` (default 3%). Needs valgrind, and a machine not busy with other work: a busy one
moves the servers' counts by a few percent (gRPC's threads meet differently). About 15 minutes here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from harness import (  # noqa: E402
    FLOOR_WORKLOADS,
    GATEWAY_ENV,
    floor_command,
    free_port,
    gateway_command,
    process,
    stub_command,
)
from workloads import WORKLOADS  # noqa: E402

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc  # noqa: E402

BASELINE = BENCH / "instructions_baseline.json"
# Every unary workload the floor answers, for the gateway and the floor alike.
SERVER_WORKLOADS = FLOOR_WORKLOADS
CALLERS = ("gateway", "boto3-facade", "aiobotocore", "boto3", "aiodynamo", "lean")
CALLER_WORKLOADS = ("GetItem", "PutItem", "Query100", "BatchWrite25")
START_TIMEOUT_S = 300.0  # a Python process's imports are slow under valgrind


class Callgrind:
    """A command under callgrind, instrumentation off until measure() switches it on."""

    def __init__(
        self, command: list[str], out: Path, name: str, *, env: dict[str, str] | None = None, **popen: Any
    ):
        self.out = out
        self.name = name
        self.process = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "--dump-instr=no",
                f"--callgrind-out-file={out}/{name}.%p",
                *command,
            ],
            cwd=ROOT,
            env={**_environ(), **(env or {})},
            **popen,
        )
        self._dumps = 0

    def _control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.process.pid)], check=True, capture_output=True, timeout=120
        )

    def measure_on(self) -> None:
        self._control("-i", "on")

    def measure_off(self) -> int:
        """Dumps the count since measure_on() and switches instrumentation off; the instructions."""
        self._control("-d")
        self._control("-i", "off")
        self._dumps += 1
        dump = self.out / f"{self.name}.{self.process.pid}.{self._dumps}"
        # "totals", not "summary": with instrumentation switched on and off, summary can wrap around.
        match = re.search(r"^totals:\s+(\d+)", dump.read_text(), re.MULTILINE)
        assert match, f"no totals in {dump}"
        return int(match.group(1))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _environ() -> dict[str, str]:
    return dict(os.environ)


async def _grpc_calls(port: int, workload: str, calls: int) -> None:
    _, _, method, request_json = WORKLOADS[workload]
    request = json_format.ParseDict(request_json, getattr(service_pb2, f"{method}Request")())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = getattr(service_pb2_grpc.DynamoDBServiceStub(channel), method)
        for _ in range(calls):
            await call(request, timeout=120)


def _wait_serving(port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            asyncio.run(_grpc_calls(port, "GetItem", 1))
            return
        except grpc.aio.AioRpcError:
            time.sleep(1)
    raise RuntimeError(f"nothing answers on {port} after {timeout_s:.0f} s")


def measure_server(
    command: list[str],
    port: int,
    workloads: tuple[str, ...],
    calls: int,
    warmup: int,
    out: Path,
    name: str,
    rounds: int,
) -> dict[str, float]:
    """Instructions per call of a gRPC server process, for each workload: the median of `rounds`
    rounds (gRPC's core hands events between its threads a little differently from round to
    round, which moves a server's count by a few percent; the calling processes' counts hold)."""
    server = Callgrind(
        command, out, name, env=GATEWAY_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    figures = {}
    try:
        _wait_serving(port)
        for workload in workloads:
            asyncio.run(_grpc_calls(port, workload, warmup))
            measured = []
            for _ in range(rounds):
                server.measure_on()
                asyncio.run(_grpc_calls(port, workload, calls))
                measured.append(server.measure_off() / calls)
            figures[workload] = statistics.median(measured)
            shown = ", ".join(f"{count:,.0f}" for count in measured)
            print(
                f"  {name} {workload}: {figures[workload]:,.0f} instructions per call ({shown})", flush=True
            )
    finally:
        server.stop()
    return figures


def measure_caller(
    client: str, target: str, endpoint: str, calls: int, warmup: int, out: Path
) -> dict[str, float]:
    """Instructions per call in the calling process (bench/caller_cost.py), for each workload."""
    command = [
        sys.executable, str(BENCH / "caller_cost.py"), "--client", client, "--target", target,
        "--endpoint", endpoint, "--workloads", *CALLER_WORKLOADS, "--calls", str(calls),
        "--warmup", str(warmup), "--handshake",
        # The gateway's own client runs on uvloop there; the others on the loop a service would use.
        *(["--event-loop", "uvloop"] if client == "lean" else []),
    ]  # fmt: skip
    caller = Callgrind(
        command,
        out,
        f"caller-{client}",
        env=GATEWAY_ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    figures: dict[str, float] = {}
    assert caller.process.stdin is not None and caller.process.stdout is not None
    try:
        for line in caller.process.stdout:
            words = line.split()
            if not words:
                continue
            if words[0] == "ready":
                caller.measure_on()
            elif words[0] == "done":
                figures[words[1]] = caller.measure_off() / calls
                print(
                    f"  caller {client} {words[1]}: {figures[words[1]]:,.0f} instructions per call",
                    flush=True,
                )
            else:
                continue  # the final JSON line, or a note
            caller.process.stdin.write("go\n")
            caller.process.stdin.flush()
    finally:
        caller.stop()
    return figures


@contextlib.contextmanager
def stub_and_gateway() -> Iterator[tuple[int, int]]:
    stub_port, gateway_port = free_port(), free_port()
    with (
        process(stub_command(stub_port), stub_port),
        process(gateway_command(stub_port, gateway_port), gateway_port, GATEWAY_ENV),
    ):
        yield stub_port, gateway_port


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"calls": args.calls, "gateway": {}, "floor": {}, "callers": {}}
    with tempfile.TemporaryDirectory() as work:
        out = Path(work)
        stub_port = free_port()
        with process(stub_command(stub_port), stub_port):
            if "gateway" in args.parts:
                port = free_port()
                command = gateway_command(stub_port, port)
                results["gateway"] = measure_server(
                    command, port, SERVER_WORKLOADS, args.calls, args.warmup, out, "gateway", args.rounds
                )
            if "floor" in args.parts:
                port = free_port()
                results["floor"] = measure_server(
                    floor_command(port),
                    port,
                    FLOOR_WORKLOADS,
                    args.calls,
                    args.warmup,
                    out,
                    "floor",
                    args.rounds,
                )
        if "callers" in args.parts:
            with stub_and_gateway() as (stub_port, gateway_port):
                for client in args.clients:
                    results["callers"][client] = measure_caller(
                        client,
                        f"127.0.0.1:{gateway_port}",
                        f"http://127.0.0.1:{stub_port}",
                        args.calls,
                        args.warmup,
                        out,
                    )
    return results


def table(results: dict[str, Any]) -> str:
    lines = ["| workload | gateway process | gRPC floor | gateway / floor |", "| --- | ---: | ---: | ---: |"]
    for workload, count in results["gateway"].items():
        floor = results["floor"].get(workload)
        ratio = f"{count / floor:.2f}x" if floor else ""
        lines.append(f"| {workload} | {count:,.0f} | {f'{floor:,.0f}' if floor else ''} | {ratio} |")
    callers = results["callers"]
    if callers:
        names = list(callers)
        lines += ["", "| workload | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
        for workload in CALLER_WORKLOADS:
            cells = [f"{callers[n][workload]:,.0f}" if workload in callers[n] else "" for n in names]
            lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(results: dict[str, Any], baseline: dict[str, Any], tolerance: float) -> list[str]:
    """Figures more than `tolerance` above the baseline's (a regression), as lines to print."""
    worse = []
    for part in ("gateway", "floor", "callers"):
        for key, value in _flat(results.get(part, {})):
            before = dict(_flat(baseline.get(part, {}))).get(key)
            if before and value > before * (1 + tolerance):
                worse.append(
                    f"{part} {key}: {value:,.0f} instructions per call, baseline {before:,.0f} (+{value / before - 1:.1%})"
                )
    return worse


def _flat(figures: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in figures.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key} ")
        else:
            yield f"{prefix}{key}", float(value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100, help="measured calls per workload")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--rounds", type=int, default=3, help="server rounds per workload (their median counts)"
    )
    parser.add_argument(
        "--parts", nargs="+", choices=("gateway", "floor", "callers"), default=["gateway", "floor", "callers"]
    )
    parser.add_argument("--clients", nargs="+", choices=CALLERS, default=list(CALLERS))
    parser.add_argument("--check", action="store_true", help="exit 1 on a regression against the baseline")
    parser.add_argument("--tolerance", type=float, default=0.03)
    parser.add_argument("--update-baseline", action="store_true")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is needed (callgrind counts the instructions)")
        return 2
    results = run(args)
    print(table(results))
    out = BENCH / "results" / "instructions.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.update_baseline:
        # The parts this run did not measure keep their committed figures.
        kept = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
        measured = {part: figures for part, figures in results.items() if figures != {}}
        BASELINE.write_text(json.dumps({**kept, **measured}, indent=2) + "\n")
        print(f"baseline written: {BASELINE.relative_to(ROOT)}")
    if args.check:
        worse = compare(results, json.loads(BASELINE.read_text()), args.tolerance)
        for line in worse:
            print(f"REGRESSION {line}")
        return 1 if worse else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
