"""ParallelScan at scale: stream a table of 100,000 and 1,000,000 (stub) items through the gateway.

Prints items/s and the gateway's RSS before, at its peak during, and after each
stream, to show that memory does not grow with the table. The stub serves pages
of 100 items; the reader is a plain generated-stub client in this process.

    .venv/bin/python bench/scan_scale.py [--items 100000 1000000] [--segments 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import grpc

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import GATEWAY_ENV, cpu_s, free_port, gateway_command, process, rss_mb, stub_command  # noqa: E402

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc  # noqa: E402


class PeakRss:
    """Samples a process's RSS every 50 ms on a thread, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def stream(port: int, segments: int) -> int:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        stub = service_pb2_grpc.DynamoDBServiceStub(channel)
        items = 0
        async for page in stub.ParallelScan(
            service_pb2.ParallelScanRequest(table_name="bench", total_segments=segments)
        ):
            items += len(page.items)
        return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--backend-client", choices=["aiobotocore", "lean"], default="lean")
    args = parser.parse_args()
    print(
        f"{'items':>9} {'segments':>8} {'seconds':>8} {'items/s':>9} {'gw cpu s':>8} {'rss before':>10} {'peak':>6} {'after':>6}"
    )
    for total in args.items:
        pages = max(1, total // (100 * args.segments))
        stub_port, gateway_port = free_port(), free_port()
        stub_cmd = stub_command(stub_port, "--scan-pages", str(pages))
        gateway_cmd = gateway_command(
            stub_port,
            gateway_port,
            "--scan-concurrency",
            str(args.segments),
            "--backend-client",
            args.backend_client,
        )
        with process(stub_cmd, stub_port), process(gateway_cmd, gateway_port, GATEWAY_ENV) as gateway:
            asyncio.run(stream(gateway_port, 1))  # warm up: connections, imports
            before, cpu_before = rss_mb(gateway.pid), cpu_s(gateway.pid)
            began = time.perf_counter()
            with PeakRss(gateway.pid) as peak:
                items = asyncio.run(stream(gateway_port, args.segments))
            elapsed = time.perf_counter() - began
            after, cpu = rss_mb(gateway.pid), cpu_s(gateway.pid) - cpu_before
        print(
            f"{items:>9} {args.segments:>8} {elapsed:>8.1f} {items / elapsed:>9.0f} {cpu:>8.1f}"
            f" {before:>10.0f} {peak.peak:>6.0f} {after:>6.0f}",
            flush=True,
        )
    print(f"(pid {os.getpid()}; RSS in MB)")


if __name__ == "__main__":
    main()
