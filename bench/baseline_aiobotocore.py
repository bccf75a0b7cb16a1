"""The baseline: what a team would do without the gateway, calling DynamoDB directly with aiobotocore.

One client per process, its pool sized to the concurrency with a FIFO gate in front,
as the gateway does. Runs one workload for a fixed time and prints one JSON line:
ops/s, latency percentiles and this process's CPU seconds. `--client raw` sends one
prebuilt request over the gateway's own HTTP/1.1 pool instead: nearly no client at all,
so its latency is the stub's own (the reference for the latency the gateway adds).

    python bench/baseline_aiobotocore.py --endpoint http://127.0.0.1:8000 --workload GetItem \
        --concurrency 64 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import xform_name

sys.path.insert(0, str(Path(__file__).parent))
from workloads import WORKLOADS


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _scan_all(client, params: dict) -> None:
    """A parallel scan done by hand: every segment, page after page, concurrently."""

    async def segment(number: int) -> None:
        page_params = {**params, "Segment": number}
        while True:
            page = await client.scan(**page_params)
            if "LastEvaluatedKey" not in page:
                return
            page_params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    await asyncio.gather(*(segment(n) for n in range(params["TotalSegments"])))


def direct_client(endpoint_url: str, pool: int, **connector_args: Any) -> Any:
    """The direct aiobotocore client the gateway is compared with (an async context manager): one
    attempt per call, as the gateway's own client makes, and the stub's bench credentials."""
    config = AioConfig(
        region_name="us-east-1",
        max_pool_connections=pool,
        retries={"mode": "standard", "total_max_attempts": 1},
        connector_args=connector_args or None,
    )
    return get_session().create_client(
        "dynamodb",
        endpoint_url=endpoint_url,
        config=config,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument(
        "--rps", type=int, default=0, help="offered rate; 0: as fast as the concurrency allows"
    )
    parser.add_argument(
        "--client", choices=["aiobotocore", "raw"], default="aiobotocore", help="raw: the stub's own latency"
    )
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    operation, params, _, _ = WORKLOADS[args.workload]
    if args.client == "raw":
        await measure(raw_call(args.endpoint, operation, params, args.concurrency), args)
        return
    async with direct_client(args.endpoint, args.concurrency) as client:
        method = getattr(client, xform_name(operation))
        if operation == "Scan":

            async def call() -> Any:
                return await _scan_all(client, params)
        else:

            async def call() -> Any:
                return await method(**params)

        await measure(call, args)


def raw_call(endpoint: str, operation: str, params: dict, concurrency: int) -> Callable[[], Awaitable[Any]]:
    """One prebuilt unsigned POST on keep-alive connections: the stub's own latency, nearly no client."""
    from dynamo_gateway_server.backends.http1 import Http1Pool

    pool = Http1Pool(endpoint, concurrency, connect_timeout_s=2, read_timeout_s=10)
    body = json.dumps(params).encode()
    request = (
        b"POST / HTTP/1.1\r\nhost: stub\r\ncontent-type: application/x-amz-json-1.0\r\n"
        b"x-amz-target: DynamoDB_20120810.%b\r\ncontent-length: %d\r\n\r\n%b"
    ) % (operation.encode(), len(body), body)
    return lambda: pool.send(request)


async def measure(call: Callable[[], Awaitable[Any]], args: argparse.Namespace) -> None:
    """Runs `call` from args.concurrency workers for args.seconds and prints one JSON line."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + args.seconds
    cpu_before = _cpu_s()
    began = time.perf_counter()
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while time.perf_counter() < stop_at:
            if args.rps:
                # An open-loop schedule shared by the workers: call n starts at began + n / rps.
                slot = began + issued / args.rps
                issued += 1
                await asyncio.sleep(max(0.0, slot - time.perf_counter()))
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - began
    cpu = _cpu_s() - cpu_before
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3

    print(
        json.dumps(
            {
                "ops": len(latencies),
                "ops_per_s": len(latencies) / elapsed,
                "p50_ms": quantile(0.5),
                "p99_ms": quantile(0.99),
                "p999_ms": quantile(0.999),
                "cpu_s": cpu,
                "elapsed_s": elapsed,
            }
        )
    )


if __name__ == "__main__":
    # The same event loop as the gateway it is compared with (the harness passes its own choice).
    arguments = parse_args()
    loop_factory = None
    if arguments.event_loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main(arguments))
