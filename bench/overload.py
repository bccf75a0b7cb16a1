"""Overload: bursts of concurrent calls far beyond the gateway's in-flight limit, and what they get.

Starts the stub DynamoDB (5 ms per answer) and a gateway in front of it, then for each
(calls, channels) pair fires that many concurrent PutItem calls, spread over that many gRPC
channels, from this process. Prints, per burst: the answers by status (every call must end
OK or RESOURCE_EXHAUSTED with RetryInfo; anything else is listed), calls accepted per second,
p50 and p99 of the accepted calls, and the gateway's peak RSS. Never pass/fail: the check
that bursts are answered is tests/integration/test_overload.py.

    .venv/bin/python bench/overload.py [--bursts 3000x1 3000x50 10000x1 10000x50] [--deadline-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import GATEWAY_ENV, cpu_s, free_port, gateway_command, process, stub_command

from dynamo_gateway import ConcurrencyLimitExceededError, GatewayClient, GatewayError


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def burst(
    target: str, calls: int, channels: int, deadline_s: float
) -> tuple[collections.Counter[str], list[float], float]:
    clients = [GatewayClient.connect(target, timeout_s=deadline_s) for _ in range(channels)]
    outcomes: collections.Counter[str] = collections.Counter()
    accepted: list[float] = []

    async def one(n: int) -> None:
        began = time.perf_counter()
        try:
            await clients[n % channels].put_item("bench", {"pk": f"user#{n}", "sk": "x"})
            accepted.append(time.perf_counter() - began)
            outcomes["OK"] += 1
        except ConcurrencyLimitExceededError as refused:
            outcomes["RESOURCE_EXHAUSTED" if refused.retry_after_s is not None else "no RetryInfo"] += 1
        except GatewayError as error:
            outcomes[f"{error.code.name} {error.reason}"] += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(calls)))
    elapsed = time.perf_counter() - began
    for client in clients:
        await client.close()
    return outcomes, accepted, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", nargs="+", default=["3000x1", "3000x50", "10000x1", "10000x50"])
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--deadline-s", type=float, default=60.0, help="each call's deadline")
    parser.add_argument("--gateway-args", nargs="*", default=[], help="more flags for the gateway")
    args = parser.parse_args()
    stub_port, port = free_port(), free_port()
    with (
        process(stub_command(stub_port, "--latency-ms", str(args.latency_ms)), stub_port),
        process(
            gateway_command(stub_port, port, "--max-concurrency", "256", *args.gateway_args),
            port,
            GATEWAY_ENV,
        ) as gateway,
    ):
        for spec in args.bursts:
            calls, channels = (int(part) for part in spec.split("x"))
            cpu_before = cpu_s(gateway.pid)
            outcomes, accepted, elapsed = asyncio.run(
                burst(f"127.0.0.1:{port}", calls, channels, args.deadline_s)
            )
            quantiles = statistics.quantiles(accepted, n=100) if len(accepted) > 1 else [0.0] * 99
            print(
                f"{calls:6d} calls on {channels:2d} channels: {dict(outcomes)}; accepted"
                f" {len(accepted) / elapsed:6.0f}/s, p50 {quantiles[49] * 1e3:6.1f} ms,"
                f" p99 {quantiles[98] * 1e3:6.1f} ms; gateway peak RSS {peak_rss_mb(gateway.pid):.0f} MB,"
                f" CPU {(cpu_s(gateway.pid) - cpu_before) / elapsed:.0%} of a core"
            )


if __name__ == "__main__":
    main()
