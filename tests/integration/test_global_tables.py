"""Global tables through the real server: three emulator instances as three regions, each behind
a fault proxy, a test-only replicator between them, and a gateway in us-east-1 with a regions file.

For each write mode: an outage of the local region during a steady mixed load; every call that
fails says so with a retryable status, reads succeed again, and no write reaches a region the
mode forbids. Also: refusals, evacuation by reloading the file while serving, ParallelScan in
one region, the region in each answer's trailing metadata and per-region health.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import pathlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dynamo_gateway import GatewayClient, GatewayError, GlobalTableModeError, regions_served
from dynamo_gateway_server.app import REGION_HEALTH_PREFIX, Clocks, Gateway
from dynamo_gateway_server.tables import TableSpec
from tests.support.backends import no_sleep
from tests.support.global_gateway import start_regional_gateway, write_regions_file
from tests.support.regions import Regions, emulated_regions

NAMES = ("us-east-1", "eu-west-1", "ap-southeast-2")
LOCAL, EU, AP = NAMES
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
_tables = itertools.count()


@pytest.fixture(autouse=True)
async def _emulator_alive() -> None:
    """Overrides the package's: these tests run emulators of their own, not the session's."""


@pytest.fixture(scope="module", params=["moto", "dynalite"])
async def regions(request: pytest.FixtureRequest) -> AsyncIterator[Regions]:
    async with emulated_regions(request.param, NAMES, replication_delay_s=0.05) as regions:
        yield regions


@pytest.fixture
async def table(regions: Regions) -> str:
    name = f"global-{next(_tables)}"
    await regions.create_table(TableSpec(name, {"pk": "S"}, "pk"))
    for region in NAMES:
        regions[region].proxy.set_plan(regions[region].proxy.plan)  # fresh fault draws
        if regions[region].proxy.down:
            await regions[region].proxy.go_up()
    regions.reset_counts()
    return name


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(regions: Regions, tmp_path: pathlib.Path) -> AsyncIterator[GatewayFactory]:
    started: list[Gateway] = []

    async def start(
        tables: str, evacuated: tuple[str, ...] = (), extra: str = "", **overrides: Any
    ) -> Gateway:
        path = tmp_path / f"regions-{len(started)}.yaml"
        write_regions_file(path, regions, tables, evacuated, extra)
        settings = {"breaker_failure_threshold": 3, "breaker_reset_timeout_s": 30, **overrides}
        gateway = await start_regional_gateway(regions, path, Clocks(sleep=no_sleep), **settings)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop(0)


def client_of(gateway: Gateway) -> GatewayClient:
    return GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=10)


async def steady_load(
    client: GatewayClient, table: str, keys: list[str], rounds: int, during: Callable[[int], Awaitable[None]]
) -> tuple[collections.Counter[str], list[GatewayError]]:
    """`rounds` rounds of a put and a get of every key, concurrently; `during(round)` runs before each."""
    outcomes: collections.Counter[str] = collections.Counter()
    failed: list[GatewayError] = []

    async def one(operation: str, key: str, n: int) -> None:
        try:
            if operation == "put":
                await client.put_item(table, {"pk": key, "n": n})
            else:
                await client.get_item(table, {"pk": key})
            outcomes[f"{operation} ok"] += 1
        except GatewayError as error:
            outcomes[f"{operation} {error.code.name}"] += 1
            failed.append(error)

    for n in range(rounds):
        await during(n)
        await asyncio.gather(*(one(op, key, n) for key in keys for op in ("put", "get")))
    return outcomes, failed


def local_down_at(regions: Regions, round_number: int) -> Callable[[int], Awaitable[None]]:
    """steady_load's `during`: the local region's proxy goes down before round `round_number`."""

    async def outage(n: int) -> None:
        if n == round_number:
            await regions[LOCAL].proxy.go_down()

    return outage


async def health_of(gateway: Gateway, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service)
        )
        return int(answer.status)


# ---------------------------------------------------------------- outages, per write mode


async def test_write_to_any_moves_reads_and_writes_to_the_next_region(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{replicas: [{LOCAL}, {EU}, {AP}]}}")
    keys = [f"k{i}" for i in range(10)]

    async with client_of(gateway) as client:
        outcomes, failed = await steady_load(client, table, keys, 6, local_down_at(regions, 2))
        with regions_served() as served:
            await client.get_item(table, {"pk": "k1"})
    # Every call failed over inside its deadline: none failed.
    assert not failed, outcomes
    assert served == [EU]
    assert regions.writes_seen(EU)["PutItem"] > 0  # the writes went on in the next region
    assert regions.writes_seen(AP)["PutItem"] == 0
    assert gateway.breakers[LOCAL].state == "open" and gateway.router is not None
    assert (
        await health_of(gateway, REGION_HEALTH_PREFIX + LOCAL) == health_pb2.HealthCheckResponse.NOT_SERVING
    )
    assert await health_of(gateway, REGION_HEALTH_PREFIX + EU) == health_pb2.HealthCheckResponse.SERVING
    assert await health_of(gateway, "") == health_pb2.HealthCheckResponse.SERVING  # EU and AP still serve


async def test_write_to_one_never_writes_outside_the_primary(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{write_mode: one, primary: {LOCAL}}}")
    keys = [f"k{i}" for i in range(10)]

    async with client_of(gateway) as client:
        outcomes, failed = await steady_load(client, table, keys, 6, local_down_at(regions, 2))
    # Reads failed over; writes could not (the primary is down, no promotion): each said so with
    # a retryable status, and none went to another region.
    assert outcomes["get ok"] == 60, outcomes
    assert outcomes["put ok"] == 20, outcomes
    assert failed and all(error.code == grpc.StatusCode.UNAVAILABLE and error.retryable for error in failed)
    for region in (EU, AP):
        assert sum(regions.writes_seen(region)[op] for op in WRITES) == 0


async def test_write_to_one_with_promotion_moves_writes_to_the_next_replica(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{write_mode: one, primary: {LOCAL}, promote_on_failure: true}}")

    async with client_of(gateway) as client:
        outcomes, failed = await steady_load(client, table, ["a", "b", "c"], 4, local_down_at(regions, 1))
    assert not failed, outcomes
    assert regions.writes_seen(EU)["PutItem"] > 0 and regions.writes_seen(AP)["PutItem"] == 0


async def test_write_to_home_sends_writes_home_or_to_the_declared_fallback_only(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(
        f"""
{table}:
  write_mode: home
  home:
    key: pk
    prefixes: {{"US#": {LOCAL}, "EU#": {EU}}}
    fallback: {{{LOCAL}: {AP}}}
"""
    )
    keys = [f"US#{i}" for i in range(5)] + [f"EU#{i}" for i in range(5)]

    async with client_of(gateway) as client:
        outcomes, failed = await steady_load(client, table, keys, 5, local_down_at(regions, 2))
        with regions_served() as served:
            await client.put_item(table, {"pk": "US#new"})
            await client.put_item(table, {"pk": "EU#new"})
    assert not failed, outcomes
    assert served == [AP, EU]
    # EU# items were written only in eu-west-1; US# ones in us-east-1, then its fallback.
    assert regions.writes_seen(EU)["PutItem"] == 5 * 5 + 1
    assert regions.writes_seen(AP)["PutItem"] == 5 * 3 + 1


# ---------------------------------------------------------------- refusals


async def test_what_a_mode_cannot_serve_safely_is_refused_saying_why(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{write_mode: any}}")
    async with client_of(gateway) as client:
        with pytest.raises(GlobalTableModeError) as strong:
            await client.get_item(table, {"pk": "a"}, consistent_read=True)
        with pytest.raises(GlobalTableModeError) as conditional:
            await client.put_item(table, {"pk": "a"}, condition="attribute_not_exists(pk)")
        await client.put_item(table, {"pk": "a"})  # unconditional writes are fine anywhere
    assert strong.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "strongly consistent read sees only the writes made in the region" in strong.value.message
    assert strong.value.metadata["write_mode"] == "any" and strong.value.metadata["table"] == table
    assert "tests a condition against the item in one region" in conditional.value.message
    assert sum(regions.reads_seen(r)["GetItem"] for r in NAMES) == 0  # refused before anything was sent


# ---------------------------------------------------------------- evacuation


async def test_evacuating_a_region_while_serving_moves_every_new_call_and_fails_none(
    regions: Regions, table: str, start_gateway: GatewayFactory, tmp_path: pathlib.Path
) -> None:
    tables = f"{table}: {{write_mode: one, primary: {LOCAL}}}"
    gateway = await start_gateway(tables)
    path = pathlib.Path(str(gateway.settings.regions_file))

    async def evacuate(n: int) -> None:
        if n == 3:
            # The operator moves the primary and evacuates the region, in one edit of the file.
            write_regions_file(path, regions, tables.replace(f"primary: {LOCAL}", f"primary: {EU}"), (LOCAL,))
            assert gateway.reload_regions()
            regions.reset_counts()

    async with client_of(gateway) as client:
        outcomes, failed = await steady_load(client, table, [f"k{i}" for i in range(8)], 6, evacuate)
    assert not failed, outcomes
    local = regions.writes_seen(LOCAL) + regions.reads_seen(LOCAL)
    assert sum(local.values()) == 0, local  # nothing new went to the evacuated region
    assert regions.writes_seen(EU)["PutItem"] == 8 * 3
    assert (
        await health_of(gateway, REGION_HEALTH_PREFIX + LOCAL) == health_pb2.HealthCheckResponse.NOT_SERVING
    )
    # A broken edit is refused and the version in force stays.
    await asyncio.to_thread(path.write_text, "regions: [\n")
    assert not gateway.reload_regions()
    assert gateway.router is not None and gateway.router.config.evacuated == {LOCAL}


async def test_a_restarted_gateway_keeps_the_evacuation(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{}}", evacuated=(LOCAL,))
    async with client_of(gateway) as client:
        await client.put_item(table, {"pk": "a"})
        assert await client.get_item(table, {"pk": "a"}) is not None
    assert sum((regions.writes_seen(LOCAL) + regions.reads_seen(LOCAL)).values()) == 0


# ---------------------------------------------------------------- streams and visibility


async def test_a_parallel_scan_stays_in_one_region_and_says_which(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{}}")
    async with client_of(gateway) as client:
        for i in range(30):
            await client.put_item(table, {"pk": f"item-{i}"})
        await regions.replicator.drain()
        regions.reset_counts()
        with regions_served() as served:
            items = [
                item async for page in client.parallel_scan(table, total_segments=4) for item in page.items
            ]
    assert len(items) == 30
    assert served == [LOCAL]
    assert regions.reads_seen(LOCAL)["Scan"] >= 4
    assert regions.reads_seen(EU)["Scan"] == regions.reads_seen(AP)["Scan"] == 0


# ---------------------------------------------------------------- replication lag


async def test_heartbeats_measure_replication_lag_between_every_pair(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(
        f"{table}: {{}}", extra=f"replication_heartbeat: {{table: {table}, interval_s: 0.1}}\n"
    )
    heartbeat = gateway.heartbeat
    assert heartbeat is not None
    pairs = {(source, target) for source in NAMES for target in NAMES if source != target}
    await until(lambda: set(heartbeat.lags) == pairs)
    # Replication stops: the newest heartbeat copies in the other regions only get older.
    regions.replicator.paused = True
    try:
        await asyncio.sleep(1.0)
        stalled = dict(heartbeat.lags)
    finally:
        regions.replicator.paused = False
    assert all(stalled[pair] >= 0.8 for pair in pairs), stalled
    exported = gateway.telemetry.metrics.registry.get_sample_value(
        "dynamodb_replication_lag_seconds", {"source": LOCAL, "target": EU}
    )
    assert exported is not None and exported >= 0.8


async def until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("wait_s", [10.0, 0.0], ids=["waits", "moves-at-once"])
async def test_moving_the_primary_live_waits_for_replication_so_no_update_is_lost(
    regions: Regions, table: str, start_gateway: GatewayFactory, wait_s: float
) -> None:
    tables = f"{table}: {{write_mode: one, primary: {LOCAL}}}"
    heartbeat = (
        f"replication_heartbeat: {{table: {table}, interval_s: 0.1, wait_for_replication_s: {wait_s}}}\n"
    )
    gateway = await start_gateway(tables, extra=heartbeat)
    path = pathlib.Path(str(gateway.settings.regions_file))
    increment = "SET n = if_not_exists(n, :zero) + :one"
    regions.replicator.delay_s = 1.5  # replication slower than the operator's edit
    try:
        async with client_of(gateway) as client:
            await client.put_item(table, {"pk": "counter", "n": 5})
            await until(lambda: gateway.schemas.get(table) is not None)  # the heartbeat's key
            moved = tables.replace(f"primary: {LOCAL}", f"primary: {EU}")
            await asyncio.to_thread(write_regions_file, path, regions, moved, (), heartbeat)
            assert gateway.reload_regions()
            with regions_served() as served:
                await client.update_item(table, {"pk": "counter"}, increment, values={":zero": 0, ":one": 1})
            # The waiting increment: eu-west-1 had the 5 written in us-east-1 first. Moving at once:
            # eu-west-1 counted from nothing, and its later write wins everywhere.
            expected = {"N": "6" if wait_s else "1"}
            counters = await converged(regions, table, expected)
    finally:
        regions.replicator.delay_s = 0.05
    assert served == [EU]
    assert counters == [expected] * 3, counters


async def converged(regions: Regions, table: str, expected: Any, timeout_s: float = 10.0) -> list[Any]:
    """Every region's counter, once all hold `expected` (or as they are when time runs out)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        counters = [(await regions.read(r, table, {"pk": {"S": "counter"}}) or {}).get("n") for r in NAMES]
        if counters == [expected] * 3 or asyncio.get_running_loop().time() > deadline:
            return counters
        await asyncio.sleep(0.1)


async def test_dgw_says_which_region_served(
    regions: Regions, table: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(f"{table}: {{}}")
    await regions[LOCAL].proxy.go_down()
    dgw = pathlib.Path(sys.executable).parent / "dgw"
    target = f"127.0.0.1:{gateway.port}"
    process = await asyncio.create_subprocess_exec(
        str(dgw),
        "--target",
        target,
        "--show-region",
        "put",
        table,
        '{"pk": "a"}',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    assert f"dgw: region {EU}" in stderr.decode()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read"),
        ("regions: {us-east-1: {}, eu-west-1: {}}\nglobal_tables: {t: {write_mode: one}}\n", "primary"),
    ],
    ids=["missing", "no-primary"],
)
async def test_a_regions_file_that_cannot_work_stops_startup_with_one_clear_line(
    tmp_path: pathlib.Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "regions.yaml"
    if content is not None:
        path.write_text(content)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dynamo_gateway_server", "--regions-file", str(path), "--port", "0",
        "--log-format", "console",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    text = (out + err).decode()
    assert process.returncode == 1, text
    assert "cannot start" in text and problem in text and str(path) in text
    assert "Traceback" not in text
