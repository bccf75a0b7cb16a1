"""Side-by-side benchmark: the gateway (driven by ghz) against direct aiobotocore, on one stub DynamoDB.

For each workload x concurrency x stub latency it runs both paths for a fixed time
and prints ops/s, p50/p99/p999 latency, CPU seconds of every process involved
(gateway, stub, load generator or baseline client), ops per CPU-second of the
whole box and, for the gateway, without its load generator ("w/o cli": ghz decodes
responses with dynamic messages and costs more than a generated client would), plus
the gateway's RSS before and after. The same ghz load also goes to a gRPC floor
(bench/grpc_floor.py: the service on grpc.aio answering at once, no DynamoDB behind it):
the least any gateway on grpc.aio can cost. With the 5 ms stub it also offers GetItem and
PutItem at a fixed rate below capacity (--latency-rps) to 64 callers, and the same load
from a near-zero-cost raw HTTP client ("stub alone"): a path's p50/p99 minus the stub
alone's is the latency it adds. Writes everything as JSON to bench/results/. Prints
numbers, never fails on them.

    .venv/bin/python bench/harness.py                 # the full matrix (a few minutes)
    .venv/bin/python bench/harness.py --quick         # GetItem/PutItem at 64, stub 0 ms
    .venv/bin/python bench/harness.py --repeat 3      # each run three times, alternating paths; medians
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from workloads import WORKLOADS  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(
    command: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# The stub accepts any keys; these keep the real credential chain out of the benchmark.
GATEWAY_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


def stub_command(port: int, *options: str) -> list[str]:
    return [sys.executable, str(BENCH / "stub_dynamodb.py"), "--port", str(port), *options]


# The gRPC floor (bench/grpc_floor.py) answers the unary workloads, with no DynamoDB behind it.
FLOOR = "grpc floor (ghz)"
FLOOR_WORKLOADS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "Query10",
    "Query100",
    "BatchGet25",
    "BatchWrite25",
    "TransactWrite5",
)


def floor_command(port: int) -> list[str]:
    return [sys.executable, str(BENCH / "grpc_floor.py"), "--port", str(port)]


def gateway_command(stub_port: int, port: int, *options: str) -> list[str]:
    """The gateway on `port` with the aws backend pointed at the stub."""
    return [
        sys.executable, "-m", "dynamo_gateway_server", "--backend", "aws", "--log-level", "WARNING",
        "--endpoint-url", f"http://127.0.0.1:{stub_port}", "--port", str(port), *options,
    ]  # fmt: skip


def ghz_command(
    ghz: str, port: int, workload: str, concurrency: int, connections: int, seconds: float, rps: int = 0
) -> list[str]:
    _, _, method, request = WORKLOADS[workload]
    return [
        ghz, "--insecure", "--call", f"dynamo_gateway.v1.DynamoDBService.{method}",
        "--data", json.dumps(request), "--concurrency", str(concurrency),
        "--connections", str(connections), "--duration", f"{seconds}s",
        *(["--rps", str(rps)] if rps else []),
        "--format", "json", f"127.0.0.1:{port}",
    ]  # fmt: skip


@dataclass
class Result:
    path: str
    workload: str
    concurrency: int
    stub_latency_ms: float
    ops: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    cpu_gateway_s: float
    cpu_stub_s: float
    cpu_client_s: float
    ops_per_cpu_s: float
    """Of the whole box: every process the run involved."""
    ops_per_service_cpu_s: float = 0.0
    """The gateway path without its load generator: what the gateway and DynamoDB spend per call."""
    rps: int = 0
    """Offered rate (0: as fast as the concurrency allows)."""
    gateway_rss_mb_before: float = 0.0
    gateway_rss_mb_after: float = 0.0


def run_ghz(
    ghz: str,
    port: int,
    workload: str,
    concurrency: int,
    seconds: float,
    stub: int,
    gateway: int,
    rps: int = 0,
    path: str = "gateway (ghz)",
    stub_latency_ms: float = 0,
) -> Result:
    before = (cpu_s(gateway), cpu_s(stub), children_cpu_s(), rss_mb(gateway))
    completed = subprocess.run(
        ghz_command(ghz, port, workload, concurrency, max(1, min(concurrency // 16, 8)), seconds, rps),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(completed.stdout)
    after = (cpu_s(gateway), cpu_s(stub), children_cpu_s(), rss_mb(gateway))
    distribution = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or ()}
    # Only answered calls count; a run whose calls fail says so instead of looking fast.
    codes = report.get("statusCodeDistribution") or {}
    ops = int(codes.get("OK", 0))
    failed = {code: n for code, n in codes.items() if code != "OK"}
    # ghz ends a timed run by closing its connections: the calls in flight then end Unavailable
    # (Canceled when it paces the calls).
    for code in ("Unavailable", "Canceled"):
        if failed.get(code, 0) <= concurrency:
            failed.pop(code, None)
    if failed:
        print(f"  {workload} x{concurrency}: calls failed through {path}: {failed}", file=sys.stderr)
    cpu = [a - b for a, b in zip(after[:3], before[:3], strict=True)]
    return Result(
        path=path,
        workload=workload,
        concurrency=concurrency,
        stub_latency_ms=stub_latency_ms,
        ops=ops,
        ops_per_s=ops / max(float(report["total"]) / 1e9, 1e-9),
        p50_ms=distribution.get(50, 0.0),
        p99_ms=distribution.get(99, 0.0),
        p999_ms=distribution.get(99.9, distribution.get(99, 0.0)),
        cpu_gateway_s=cpu[0],
        cpu_stub_s=cpu[1],
        cpu_client_s=cpu[2],
        ops_per_cpu_s=ops / max(sum(cpu), 1e-9),
        ops_per_service_cpu_s=ops / max(cpu[0] + cpu[1], 1e-9),
        rps=rps,
        gateway_rss_mb_before=before[3],
        gateway_rss_mb_after=after[3],
    )


def run_baseline(
    endpoint_port: int,
    workload: str,
    concurrency: int,
    seconds: float,
    stub: int,
    event_loop: str,
    rps: int = 0,
    client: str = "aiobotocore",
    stub_latency_ms: float = 0,
) -> Result:
    stub_before = cpu_s(stub)
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH / "baseline_aiobotocore.py"),
            "--endpoint",
            f"http://127.0.0.1:{endpoint_port}",
            "--workload",
            workload,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--event-loop",
            event_loop,
            "--rps",
            str(rps),
            "--client",
            client,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    stub_cpu = cpu_s(stub) - stub_before
    return Result(
        path="direct aiobotocore" if client == "aiobotocore" else "stub alone (raw)",
        workload=workload,
        concurrency=concurrency,
        stub_latency_ms=stub_latency_ms,
        ops=report["ops"],
        ops_per_s=report["ops_per_s"],
        p50_ms=report["p50_ms"],
        p99_ms=report["p99_ms"],
        p999_ms=report["p999_ms"],
        cpu_gateway_s=0.0,
        cpu_stub_s=stub_cpu,
        cpu_client_s=report["cpu_s"],
        ops_per_cpu_s=report["ops"] / max(report["cpu_s"] + stub_cpu, 1e-9),
        rps=rps,
    )


def plan(args: argparse.Namespace, latency: float) -> list[tuple[str, int, int]]:
    """(workload, concurrency, offered rate) for one stub latency."""
    runs = []
    for workload in args.workloads:
        # A stream carries a whole table (4 segments x 10 pages x 100 items here): data jobs
        # run a few at once, and the baseline's per-page SDK cost would take minutes at 256.
        levels = (
            [c for c in args.concurrency if c <= 4] or [1] if workload == "ParallelScan" else args.concurrency
        )
        runs += [(workload, concurrency, 0) for concurrency in levels]
    if latency == 5.0 and args.latency_rps and not args.quick:
        # At full speed 64 callers on a 5 ms stub ask for 12,800 calls/s, far more than two shared
        # cores serve, so latency there is queueing. Below capacity it is what the gateway adds.
        runs += [(workload, 64, args.latency_rps) for workload in ("GetItem", "PutItem")]
    return runs


def median(measured: tuple[Result, ...]) -> Result:
    """The round with the median ops per CPU-second (all rounds go to the JSON)."""
    ranked = sorted(measured, key=lambda result: result.ops_per_cpu_s)
    return ranked[len(ranked) // 2]


def print_row(result: Result) -> None:
    rss = (
        f"{result.gateway_rss_mb_before:5.0f}>{result.gateway_rss_mb_after:<5.0f}"
        if result.gateway_rss_mb_after
        else ""
    )
    without_client = f"{result.ops_per_service_cpu_s:7.0f}" if result.ops_per_service_cpu_s else ""
    print(
        f"{result.path:20} {result.workload:13} {result.concurrency:>4} {result.rps or '':>4}"
        f" {result.stub_latency_ms:>5.0f} {result.ops_per_s:>8.0f}"
        f" {result.p50_ms:>7.2f} {result.p99_ms:>7.2f} {result.p999_ms:>7.2f}"
        f" {result.cpu_gateway_s:>7.2f} {result.cpu_stub_s:>8.2f} {result.cpu_client_s:>7.2f}"
        f" {result.ops_per_cpu_s:>9.0f} {without_client:>7} {rss:>11}",
        flush=True,
    )


def measure(
    args: argparse.Namespace, ghz: str, latency: float, floor_port: int, floor_pid: int
) -> list[Result]:
    """Every run of the plan for one stub latency, each path `args.repeat` times; prints medians."""
    results: list[Result] = []
    stub_port, gateway_port = free_port(), free_port()
    stub_cmd = stub_command(stub_port, "--latency-ms", str(latency))
    # The gateway's DynamoDB pool as large as the most callers of any run in the plan (the latency
    # runs have 64 whatever --concurrency says), so no run queues on the pool.
    pool = max(concurrency for _, concurrency, _ in plan(args, latency))
    gateway_cmd = gateway_command(
        stub_port, gateway_port, "--max-concurrency", str(pool),
        "--backend-client", args.backend_client, "--event-loop", args.event_loop,
    )  # fmt: skip
    with process(stub_cmd, stub_port) as stub, process(gateway_cmd, gateway_port, GATEWAY_ENV) as gateway:
        for workload, concurrency, rps in plan(args, latency):
            through = functools.partial(run_ghz, ghz, workload=workload, concurrency=concurrency,
                                        seconds=args.seconds, stub=stub.pid, rps=rps,
                                        stub_latency_ms=latency)  # fmt: skip
            baseline = functools.partial(
                run_baseline, stub_port, workload, concurrency, args.seconds, stub.pid, args.event_loop, rps,
                stub_latency_ms=latency,
            )  # fmt: skip
            runs = [functools.partial(through, port=gateway_port, gateway=gateway.pid), baseline]
            if rps:  # the reference for added latency: the stub as a client with almost no cost sees it
                runs.append(functools.partial(baseline, client="raw"))
            if workload in FLOOR_WORKLOADS and (rps or not latency):
                # What gRPC alone costs: the same load on handlers that only return the same answer.
                runs.append(functools.partial(through, port=floor_port, gateway=floor_pid, path=FLOOR))
            # Paths alternate, round after round, so a slow spell of the machine hits them alike.
            rounds = [[run() for run in runs] for _ in range(args.repeat)]
            for measured in zip(*rounds, strict=True):
                results.extend(measured)
                print_row(median(measured))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="GetItem and PutItem at concurrency 64, stub 0 ms"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each run")
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--concurrency", nargs="*", type=int, default=[1, 64, 256])
    parser.add_argument("--stub-latency-ms", nargs="*", type=float, default=[0.0, 5.0])
    parser.add_argument("--backend-client", choices=["aiobotocore", "lean"], default="lean")
    parser.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per run; the table shows each path's median round"
    )
    parser.add_argument(
        "--latency-rps",
        type=int,
        default=500,
        help="offered rate of the added-latency runs (GetItem/PutItem at 64 with the 5 ms stub); 0: none",
    )
    args = parser.parse_args()
    if args.quick:
        args.workloads, args.concurrency, args.stub_latency_ms = ["GetItem", "PutItem"], [64], [0.0]
    ghz = shutil.which("ghz", path=f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    if ghz is None:
        sys.exit("ghz not found: run scripts/bootstrap.sh")
    results: list[Result] = []
    print(
        f"{'path':20} {'workload':13} {'conc':>4} {'rps':>4} {'stub':>5} {'ops/s':>8} {'p50':>7} {'p99':>7} {'p999':>7}"
        f" {'cpu gw':>7} {'cpu stub':>8} {'cpu cli':>7} {'ops/cpu-s':>9} {'w/o cli':>7} {'rss MB':>11}"
    )
    floor_port = free_port()
    with process(floor_command(floor_port), floor_port) as floor:
        for latency in args.stub_latency_ms:
            results += measure(args, ghz, latency, floor_port, floor.pid)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"harness-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    path.write_text(json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2))
    print(f"\nwritten: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
