"""What the first call on a table costs while the gateway learns its key schema.

A gateway on loopback in front of a scripted DynamoDB whose DescribeTable takes
--describe-ms (200 by default) and whose GetItem answers at once. It times, over
gRPC, the first GetItem on each of --tables undeclared tables, then a second one
on each (the schema known by then), and prints both medians and their
difference: the time the first call waited for the lookup. Prints numbers, never
fails on them.

    .venv/bin/python bench/first_call.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import grpc

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import Gateway
from dynamo_gateway_server.config import Settings


class SlowDescribe:
    """The backend seam: DescribeTable after a delay, every other call at once."""

    def __init__(self, describe_s: float) -> None:
        self.describe_s = describe_s

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DescribeTable":
            await asyncio.sleep(self.describe_s)
            return {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}
        return {"Item": {"pk": {"S": "a"}}}

    async def close(self) -> None:
        pass


async def timed_get(stub: service_pb2_grpc.DynamoDBServiceStub, table: str) -> float:
    request = service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "a"}})
    started = time.perf_counter()
    await stub.GetItem(request, timeout=10)
    return (time.perf_counter() - started) * 1000


async def main(describe_ms: float, tables: int) -> None:
    gateway = Gateway(Settings(port=0, backend="aws", metrics_port=-1), SlowDescribe(describe_ms / 1000))
    await gateway.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = service_pb2_grpc.DynamoDBServiceStub(channel)
            await timed_get(stub, "warm-up")  # the channel and the first RPC's one-off costs
            first = [await timed_get(stub, f"table-{n}") for n in range(tables)]
            await gateway.schemas.settled()
            second = [await timed_get(stub, f"table-{n}") for n in range(tables)]
    finally:
        await gateway.stop(0)
    p50_first, p50_second = statistics.median(first), statistics.median(second)
    print(f"DescribeTable takes {describe_ms:.0f} ms; {tables} undeclared tables")
    print(f"first GetItem on a table   p50 {p50_first:7.2f} ms  max {max(first):7.2f} ms")
    print(f"second GetItem on a table  p50 {p50_second:7.2f} ms  max {max(second):7.2f} ms")
    print(f"added by the schema lookup p50 {p50_first - p50_second:7.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--describe-ms", type=float, default=200.0)
    parser.add_argument("--tables", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.describe_ms, arguments.tables))
