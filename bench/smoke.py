"""Smoke benchmark: GetItem and PutItem through the gateway on the memory backend.

Prints ops/s and latency percentiles; never pass/fail. The memory backend is
moto's server (about 150-400 ops/s on this machine), so this measures the whole
stack's correctness under concurrency more than the gateway's own cost; the
performance issue's harness uses a stub endpoint for that.

    .venv/bin/python bench/smoke.py [--calls 600] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from dynamo_gateway import GatewayClient
from dynamo_gateway_server.app import start_gateway
from dynamo_gateway_server.config import Settings


async def _run(label: str, calls: int, concurrency: int, one_call) -> None:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def timed(i: int) -> None:
        async with gate:
            began = time.perf_counter()
            await one_call(i)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(timed(i) for i in range(calls)))
    elapsed = time.perf_counter() - began
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"{label:8} {calls / elapsed:8.0f} ops/s   p50 {quantiles[49] * 1e3:6.1f} ms"
        f"   p99 {quantiles[98] * 1e3:6.1f} ms   ({calls} calls, concurrency {concurrency})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    began = time.perf_counter()
    gateway = await start_gateway(Settings(port=0, backend="memory", tables_file="examples/tables.yaml"))
    print(f"startup  {time.perf_counter() - began:8.2f} s (memory backend, example tables)")
    try:
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}") as client:
            await _run(
                "PutItem",
                args.calls,
                args.concurrency,
                lambda i: client.put_item("app", {"pk": f"user#{i % 50}", "sk": f"item#{i}", "n": i}),
            )
            await _run(
                "GetItem",
                args.calls,
                args.concurrency,
                lambda i: client.get_item("app", {"pk": f"user#{i % 50}", "sk": f"item#{i}"}),
            )
    finally:
        await gateway.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
