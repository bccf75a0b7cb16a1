"""The cost of the gateway's own request path below gRPC, per call, in CPU time or in instructions.

The servicer, the request guard (policy, DynamoDB's input rules) and every stage of
the backend chain (capacity, telemetry, retries) as app.Gateway wires them, in
front of a scripted DynamoDB that answers at once; gRPC itself is left out (the
harness measures it). With --instructions it runs itself under valgrind's
callgrind twice, with N and 5N calls, and prints the instructions per call of the
difference: the startup cancels out, and instruction counts do not move with this
VM's speed the way CPU time does, so a change worth a few percent shows. Prints
numbers, never fails on them.

    .venv/bin/python bench/path_cost.py                   # CPU µs per call (noisy here)
    .venv/bin/python bench/path_cost.py --instructions    # instructions per call (needs valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import re
import shutil
import subprocess
import sys
import time
from typing import Any

from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.app import Gateway
from dynamo_gateway_server.config import Settings

ITEM = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}, "name": {"S": "Ada"}, "age": {"N": "36"}}
GET = service_pb2.GetItemRequest(table_name="app", key={"pk": {"s": "user#1"}, "sk": {"s": "profile"}})
PUT = service_pb2.PutItemRequest(
    table_name="app",
    item={"pk": {"s": "user#1"}, "sk": {"s": "profile"}, "name": {"s": "Ada"}, "age": {"n": "36"}},
)


class ScriptedDynamoDB:
    """Answers at once, with consumed capacity, as DynamoDB would to the gateway's requests."""

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DescribeTable":
            keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
            return {"Table": {"KeySchema": keys}}
        capacity = {"TableName": "app", "CapacityUnits": 1.0}
        return (
            {"Item": ITEM, "ConsumedCapacity": capacity}
            if operation == "GetItem"
            else {"ConsumedCapacity": capacity}
        )

    async def close(self) -> None:
        pass


class Context:
    """What the servicer asks of a gRPC context on the success path."""

    def time_remaining(self) -> float:
        return 5.0

    async def abort(self, *status: Any) -> None:
        raise RuntimeError(f"the call failed: {status}")


async def measure(calls: int, operations: tuple[str, ...] = ("GetItem", "PutItem")) -> dict[str, float]:
    # Log records are still made (their cost is the path's); they just are not printed.
    logging.getLogger().addHandler(logging.NullHandler())
    gateway = Gateway(Settings(port=0, backend="aws", metrics_port=-1), ScriptedDynamoDB())
    servicer = gateway.servicer
    context = Context()
    await servicer.GetItem(GET, context)
    await gateway.schemas.settled()  # the key schema known, as for any table after its first call
    for _ in range(200):
        await servicer.GetItem(GET, context)
        await servicer.PutItem(PUT, context)
    gc.collect()
    gc.freeze()
    per_call = {}
    for name, request, method in (("GetItem", GET, servicer.GetItem), ("PutItem", PUT, servicer.PutItem)):
        if name not in operations:
            continue
        started = time.process_time()
        for _ in range(calls):
            await method(request, context)
        per_call[name] = (time.process_time() - started) / calls * 1e6
    await gateway.schemas.close()
    gateway.telemetry.close()
    return per_call


def instructions(calls: int, operations: tuple[str, ...]) -> int:
    """Instructions of this script with `calls` calls of each kind, as callgrind counts them."""
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--calls",
            str(calls),
            "--operations",
            *operations,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        sys.exit(f"callgrind printed no count:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="calls of each kind (GetItem, PutItem)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument(
        "--operations",
        nargs="+",
        choices=("GetItem", "PutItem"),
        default=["GetItem", "PutItem"],
        help="which to call",
    )
    args = parser.parse_args()
    operations = tuple(args.operations)
    if not args.instructions:
        per_call = asyncio.run(measure(args.calls, operations))
        print("  ".join(f"{name} {cost:.1f} µs CPU per call" for name, cost in per_call.items()))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found (apt-get install valgrind)")
    small = max(1, args.calls // 40)  # callgrind runs Python about 50 times slower
    counts = [instructions(small, operations), instructions(5 * small, operations)]
    print(f"{(counts[1] - counts[0]) / (4 * small):,.0f} instructions per {' + '.join(operations)}")


if __name__ == "__main__":
    main()
