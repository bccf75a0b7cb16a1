"""Write sharding's figure: writes to one hot logical key, sharded 8 ways vs unsharded, under a per-partition limit.

DynamoDB accepts about 1,000 writes per second into one partition key; past that it throttles,
however much the table is provisioned for. Here moto's server sits behind the fault proxy
(tests/support/emulators.py), which holds each partition key value to `--limit` writes/s (a
token bucket each). The limit is scaled down to 20/s because this whole path on one machine
(callers, gateway and proxy in this process, moto in another) tops out near 200 writes/s: at
8 x 20/s the sharded run is still bound by the limit, not by the machine.

A gateway in this process declares one table with two entities that differ only in sharding:
`event` (`shards: 8`, a random shard per write) and `event_plain`. For each, `--writers`
concurrent callers put events into the same logical key (feed "hot") for `--seconds`, after
`--warmup-s` that spends the buckets' first second's worth. The gateway retries throttles itself
(its default policy: 10 attempts, backoff from 50 ms); the callers count final outcomes only.
Printed per run: the partition keys the writes landed in, writes accepted per second, calls that
failed after the gateway's retries, and the attempts the proxy throttled. A third run,
unsharded with no limit, is the machine's ceiling.

    .venv/bin/python bench/sharding.py [--seconds 10] [--limit 20] [--writers 64]

Writes JSON to bench/results/sharding.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import itertools
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from dynamo_gateway import GatewayClient, GatewayError  # noqa: E402
from dynamo_gateway_server.app import Gateway  # noqa: E402
from dynamo_gateway_server.backends.memory import MotoServerProcess  # noqa: E402
from dynamo_gateway_server.config import Settings  # noqa: E402
from dynamo_gateway_server.tables import TableSpec, create_table_params, load_tables_file  # noqa: E402
from tests.support.backends import aws_backend_for  # noqa: E402
from tests.support.emulators import FaultPlan, FaultProxy  # noqa: E402

TABLES = """\
tables:
  - name: feed
    attributes: {pk: S, sk: S}
    key: {partition: pk, sort: sk}
    entities:
      - name: event
        attributes: {feed: S, at: S, event_id: S}
        keys: {pk: "FEED#{feed}", sk: "EVENT#{at}#{event_id}"}
        shards: 8
      - name: event_plain
        attributes: {feed: S, at: S, event_id: S}
        keys: {pk: "PLAIN#{feed}", sk: "EVENT#{at}#{event_id}"}
"""
HOT_FEED = "hot"


@dataclass
class Run:
    entity: str
    limit_per_partition: float
    writers: int
    seconds: float
    accepted: int
    accepted_per_s: float
    # Calls that failed after the gateway's own retries, by status.
    failed: dict[str, int]
    # Attempts the proxy throttled during the measured window (the gateway retried them).
    throttled_attempts: int
    # Distinct partition keys the accepted writes landed in.
    partitions: int


def feed_table() -> TableSpec:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tables.yaml"
        path.write_text(TABLES)
        (spec,) = load_tables_file(path)
    return spec


async def start_gateway(endpoint_url: str, spec: TableSpec, writers: int) -> Gateway:
    # The breaker is not what is measured: throttling left after retries must not open it.
    settings = Settings(port=0, backend="aws", grace_period_s=0, breaker_failure_threshold=10**9)
    backend = await aws_backend_for(endpoint_url, max_concurrency=max(64, writers))
    gateway = Gateway(
        settings, backend, endpoint=endpoint_url, declared_tables=[spec], created_tables={spec.name}
    )
    await gateway.start()
    await gateway.backend.call("CreateTable", create_table_params(spec))
    return gateway


async def hammer(
    client: GatewayClient, proxy: FaultProxy, table: str, entity: str, args: argparse.Namespace, limit: float
) -> Run:
    """`args.writers` callers putting events into the hot feed; counts what ends in the window."""
    numbers = itertools.count()
    began = time.monotonic()
    window = (began + args.warmup_s, began + args.warmup_s + args.seconds)
    accepted = 0
    failed: collections.Counter[str] = collections.Counter()
    throttled_before = 0

    async def writer() -> None:
        nonlocal accepted
        while time.monotonic() < window[1]:
            n = next(numbers)
            event = {"feed": HOT_FEED, "at": f"{n:09d}", "event_id": f"e{n}", "payload": "x" * 100}
            try:
                await client.put_item(table, event, entity=entity)
                outcome = None
            except GatewayError as error:
                outcome = error.code.name
            ended = time.monotonic()
            if not window[0] <= ended < window[1]:
                continue
            if outcome is None:
                accepted += 1
            else:
                failed[outcome] += 1

    async def mark_window() -> None:
        nonlocal throttled_before
        await asyncio.sleep(args.warmup_s)
        throttled_before = proxy.injected["partition_throttle"]

    await asyncio.gather(mark_window(), *(writer() for _ in range(args.writers)))
    throttled = proxy.injected["partition_throttle"] - throttled_before
    # The physical partitions the writes went to, as a query by entity (over every shard) sees them.
    stored = {
        item["pk"]
        async for item in client.query(table, entity=entity, entity_key={"feed": HOT_FEED}, page_size=1000)
    }
    return Run(
        entity=entity,
        limit_per_partition=limit,
        writers=args.writers,
        seconds=args.seconds,
        accepted=accepted,
        accepted_per_s=round(accepted / args.seconds, 1),
        failed=dict(failed),
        throttled_attempts=throttled,
        partitions=len(stored),
    )


async def main(args: argparse.Namespace) -> list[Run]:
    spec = feed_table()
    moto = await MotoServerProcess.start()
    runs: list[Run] = []
    try:
        for entity, limit in (("event_plain", args.limit), ("event", args.limit), ("event_plain", 0.0)):
            # A fresh table, proxy and gateway per run: no writes or buckets left from the one before.
            spec_of_run = dataclasses.replace(spec, name=f"feed-{len(runs)}")
            proxy = FaultProxy(moto.endpoint_url, FaultPlan(partition_writes_per_s=limit))
            await proxy.start()
            gateway = await start_gateway(proxy.endpoint_url, spec_of_run, args.writers)
            client = GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=30)
            try:
                run = await hammer(client, proxy, spec_of_run.name, entity, args, limit)
            finally:
                await client.close()
                await gateway.stop(0)
                await proxy.stop()
            runs.append(run)
            shown = f"{limit:.0f}/s" if limit else "none"
            print(
                f"{entity:<12} {shown:>13} {run.partitions:>10} {run.accepted_per_s:>14.1f}"
                f" {sum(run.failed.values()):>9} {run.throttled_attempts:>10}",
                flush=True,
            )
    finally:
        await moto.stop()
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="before the window: spends the burst")
    parser.add_argument("--limit", type=float, default=20.0, help="writes/s per partition key value")
    parser.add_argument("--writers", type=int, default=64, help="concurrent callers")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    # The gateway's hot-partition warnings and retry logs are the point of the run, not its output.
    logging.basicConfig(level=logging.ERROR)
    print(
        f"{arguments.writers} writers, one logical key, {arguments.seconds:.0f} s each (moto behind the proxy)"
    )
    print(
        f"{'entity':<12} {'limit/key':>13} {'partitions':>10} {'accepted/s':>14} {'failed':>9} {'throttled':>10}"
    )
    results = asyncio.run(main(arguments))
    report = {
        "command": " ".join(["bench/sharding.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": [asdict(run) for run in results],
    }
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "sharding.json").write_text(json.dumps(report, indent=2) + "\n")
