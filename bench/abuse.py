"""Abusive callers: what idle connections and streams nobody reads cost the gateway.

Starts the stub DynamoDB and a gateway in front of it (one process each), then:
- idle connections: opens N raw HTTP/2 connections that send the preface and SETTINGS and then
  nothing; prints the gateway's RSS per idle connection, GetItem latency from a real client
  while they sit there (against none), and how long until the gateway closes them (GOAWAY) with
  --max-connection-idle-s (longer than the latency runs, so they do not overlap);
- unread streams: opens K ParallelScans of a large table (the stub's, `--scan-pages` pages of
  100 items per segment) whose reader does not read; prints the gateway's RSS per unread stream
  once the scans have stopped, after --stream-stall-timeout-s has ended them, and once the
  reader finally reads: the pages that were on their way to it, then the status.
Never pass/fail: the checks are tests/integration/test_idle_connections.py and
test_stalled_streams.py. Mind the open-files limit (ulimit -n): each idle connection takes a
descriptor here and one in the gateway.

    .venv/bin/python bench/abuse.py [--idle 1000 2000] [--unread 1 10] [--idle-s 20] [--stall-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import GATEWAY_ENV, cpu_s, free_port, gateway_command, process, rss_mb, stub_command

from dynamo_gateway import GatewayClient
from dynamo_gateway.v1 import service_pb2, service_pb2_grpc

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
SETTINGS_ACK = bytes.fromhex("000000040100000000")
SCAN_SEGMENTS = 8


async def idle_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PREFACE)
    head = await reader.readexactly(9)  # the server's SETTINGS, acknowledged as a client does
    await reader.readexactly(int.from_bytes(head[:3], "big"))
    writer.write(SETTINGS_ACK)
    return reader, writer


async def until_closed(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def get_item_latencies_ms(client: GatewayClient, calls: int = 300) -> tuple[float, float]:
    took = []
    for n in range(calls):
        began = time.perf_counter()
        await client.get_item("bench", {"pk": f"user#{n}", "sk": "x"})
        took.append((time.perf_counter() - began) * 1000)
    quantiles = statistics.quantiles(took, n=100)
    return quantiles[49], quantiles[98]


async def settled_rss_mb(pid: int, pause_s: float = 1.0) -> float:
    await asyncio.sleep(pause_s)
    return rss_mb(pid)


async def idle_connections(port: int, pid: int, count: int) -> None:
    async with GatewayClient.connect(f"127.0.0.1:{port}", timeout_s=30) as client:
        await get_item_latencies_ms(client, 100)  # warm up
        before = await settled_rss_mb(pid)
        quiet = await get_item_latencies_ms(client)
        began = time.perf_counter()
        opened = await asyncio.gather(*(idle_connection(port) for _ in range(count)))
        held = await settled_rss_mb(pid)
        busy = await get_item_latencies_ms(client)
        await asyncio.gather(*(until_closed(reader) for reader, _ in opened))
        closed_after = time.perf_counter() - began
        for _, writer in opened:
            writer.close()
        after = await settled_rss_mb(pid)
    print(
        f"{count:5d} idle connections: gateway RSS {before:.0f} -> {held:.0f} MB"
        f" ({(held - before) * 1024 / count:.1f} KB each), {after:.0f} MB once closed;"
        f" GetItem p50/p99 {quiet[0]:.2f}/{quiet[1]:.2f} ms alone, {busy[0]:.2f}/{busy[1]:.2f} ms"
        f" beside them; all closed {closed_after:.1f} s after they opened"
    )


async def read_to_the_end(call: grpc.aio.UnaryStreamCall[Any, Any]) -> tuple[int, int, grpc.StatusCode]:
    """Pages and bytes the reader then gets, and the status after them."""
    pages = size = 0
    try:
        async for page in call:
            pages += 1
            size += page.ByteSize()
    except grpc.aio.AioRpcError:
        pass
    return pages, size, await call.code()


async def until_quiet(pid: int, cpu_share: float = 0.05, give_up_s: float = 120.0) -> float:
    """Waits until the gateway uses under `cpu_share` of a core for a second (its scans have
    stopped), or `give_up_s`. Returns the seconds waited."""
    began = time.perf_counter()
    while time.perf_counter() - began < give_up_s:
        before = cpu_s(pid)
        await asyncio.sleep(1.0)
        if cpu_s(pid) - before < cpu_share:
            break
    return time.perf_counter() - began


async def unread_streams(port: int, pid: int, count: int, stall_s: float) -> None:
    before = await settled_rss_mb(pid)
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = service_pb2_grpc.DynamoDBServiceStub(channel)
        request = service_pb2.ParallelScanRequest(table_name="bench", total_segments=SCAN_SEGMENTS)
        calls = [stub.ParallelScan(request) for _ in range(count)]  # not read, for now
        stopped_after = await until_quiet(pid)
        held = rss_mb(pid)
        # Past the stall timeout the gateway has ended them; their status waits behind the pages
        # gRPC already handed over, so a reader that never reads never sees it.
        ended = await settled_rss_mb(pid, stall_s + 1.0)
        outcomes = await asyncio.gather(*(read_to_the_end(call) for call in calls))
        read = await settled_rss_mb(pid)
    pages = statistics.mean(pages for pages, _, _ in outcomes)
    size = statistics.mean(size for _, size, _ in outcomes)
    codes = sorted({code.name for _, _, code in outcomes})
    print(
        f"{count:5d} unread ParallelScans: gateway quiet after {stopped_after:.0f} s; RSS"
        f" {before:.0f} -> {held:.0f} MB ({(held - before) / count:.1f} MB each) while unread,"
        f" {ended:.0f} MB once the stall timeout ended them, {read:.0f} MB once read; each had"
        f" {pages:.0f} pages ({size / 1e6:.1f} MB) on its way to the reader, then {codes}"
    )


async def warm_up_scan(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.DynamoDBServiceStub(channel)
        request = service_pb2.ParallelScanRequest(table_name="bench", total_segments=SCAN_SEGMENTS)
        async for _ in stub.ParallelScan(request):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--unread", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--idle-s", type=float, default=20.0, help="--max-connection-idle-s of the gateway")
    parser.add_argument("--stall-s", type=float, default=5.0, help="--stream-stall-timeout-s of the gateway")
    parser.add_argument("--scan-pages", type=int, default=500, help="pages per segment in the stub's table")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(args.idle) + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))  # the gateway inherits it
    stub_port = free_port()
    gateway_flags = [
        "--max-connection-idle-s",
        str(args.idle_s),
        "--stream-stall-timeout-s",
        str(args.stall_s),
    ]
    with process(stub_command(stub_port, "--scan-pages", str(args.scan_pages)), stub_port):
        port = free_port()
        with process(gateway_command(stub_port, port, *gateway_flags), port, GATEWAY_ENV) as gateway:
            for count in args.idle:
                asyncio.run(idle_connections(port, gateway.pid, count))
        # A fresh gateway, warmed up by one scan read to its end: the idle runs' heap is not in the way.
        port = free_port()
        with process(gateway_command(stub_port, port, *gateway_flags), port, GATEWAY_ENV) as gateway:
            asyncio.run(warm_up_scan(port))
            for count in args.unread:
                asyncio.run(unread_streams(port, gateway.pid, count, args.stall_s))


if __name__ == "__main__":
    main()
