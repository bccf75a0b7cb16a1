"""The emulated regions of tests/support/regions.py, on both emulators: writes through one
region's proxy reach the others' emulators after the replication delay, and only then."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dynamo_gateway_server.backends import BackendError, BackendUnavailableError
from dynamo_gateway_server.backends.aws import AwsBackend
from dynamo_gateway_server.tables import TableSpec
from tests.support.backends import aws_backend_for
from tests.support.emulators import DynaliteProcess
from tests.support.regions import Regions, emulated_regions

NAMES = ("us-east-1", "eu-west-1", "ap-southeast-2")
A, B, C = NAMES
# Long enough that a read right after a write cannot race its copy.
DELAY_S = 0.5
_tables = itertools.count()


def s(value: str) -> dict[str, str]:
    return {"S": value}


def key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk)}


@pytest.fixture(autouse=True)
async def _emulator_alive() -> None:
    """Overrides the package's: these tests run emulators of their own, not the session's."""


@pytest.fixture(scope="module", params=["moto", "dynalite"])
async def regions(request: pytest.FixtureRequest) -> AsyncIterator[Regions]:
    async with emulated_regions(request.param, NAMES, replication_delay_s=DELAY_S) as regions:
        yield regions


@pytest.fixture(scope="module")
async def via_a(regions: Regions) -> AsyncIterator[AwsBackend]:
    """A client of region A, through its proxy, as a gateway would be."""
    backend = await aws_backend_for(regions.endpoints()[A], region=A)
    yield backend
    await backend.close()


@pytest.fixture
async def via_b(regions: Regions) -> AsyncIterator[AwsBackend]:
    """A client of region B through its proxy; one per test, as a test may take B's proxy down."""
    backend = await aws_backend_for(regions.endpoints()[B], region=B)
    yield backend
    await backend.close()


@pytest.fixture
async def table(regions: Regions) -> str:
    """A fresh table in every region, with replication and counts as the module starts them."""
    replicator = regions.replicator
    replicator.paused = False
    await replicator.drain()  # nothing from an earlier test lands in this one's counts
    replicator.delay_s = DELAY_S
    replicator.errors.clear()
    for name in regions.names:
        if regions[name].proxy.down:
            await regions[name].proxy.go_up()
    spec = TableSpec(
        name=f"regions-{next(_tables)}",
        attributes={"pk": "S", "sk": "S"},
        partition_key="pk",
        sort_key="sk",
    )
    name = await regions.create_table(spec)
    regions.reset_counts()
    return name


async def settle(regions: Regions) -> None:
    """Waits for every copy, and fails on any that went wrong."""
    await regions.replicator.drain()
    assert regions.replicator.errors == []


async def test_a_put_reaches_the_other_regions_after_the_delay(
    regions: Regions, via_a: AwsBackend, table: str
) -> None:
    item = {**key("p1"), "n": {"N": "1"}, "tags": {"SS": ["a", "b"]}}
    written_at = time.monotonic()
    await via_a.call("PutItem", {"TableName": table, "Item": item})
    assert regions.replicator.pending == 1
    assert await regions.read(A, table, key("p1")) == item
    assert await regions.read(B, table, key("p1")) is None
    assert await regions.read(C, table, key("p1")) is None

    await settle(regions)
    assert time.monotonic() - written_at >= DELAY_S * 0.9
    for name in NAMES:
        assert await regions.read(name, table, key("p1")) == item
    assert regions.replicator.pending == 0
    assert regions.replicator.copied == collections.Counter({B: 1, C: 1})


async def test_only_the_region_written_to_counts_the_write(
    regions: Regions, via_a: AwsBackend, table: str
) -> None:
    await via_a.call("PutItem", {"TableName": table, "Item": key("p1")})
    await via_a.call("GetItem", {"TableName": table, "Key": key("p1")})
    await settle(regions)
    assert regions.writes_seen(A) == collections.Counter({"PutItem": 1})
    assert regions.reads_seen(A) == collections.Counter({"GetItem": 1})
    for name in (B, C):  # replication went around their proxies
        assert regions.writes_seen(name) == collections.Counter()
        assert regions.reads_seen(name) == collections.Counter()
    regions.reset_counts()
    assert regions.writes_seen(A) == collections.Counter()
    assert regions.reads_seen(A) == collections.Counter()


async def test_update_and_delete_replicate(regions: Regions, via_a: AwsBackend, table: str) -> None:
    await via_a.call("PutItem", {"TableName": table, "Item": {**key("p1"), "n": {"N": "1"}}})
    await settle(regions)

    await via_a.call(
        "UpdateItem",
        {
            "TableName": table,
            "Key": key("p1"),
            "UpdateExpression": "SET n = n + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        },
    )
    assert await regions.read(B, table, key("p1")) == {**key("p1"), "n": {"N": "1"}}
    await settle(regions)
    for name in NAMES:
        assert await regions.read(name, table, key("p1")) == {**key("p1"), "n": {"N": "2"}}

    await via_a.call("DeleteItem", {"TableName": table, "Key": key("p1")})
    assert await regions.read(C, table, key("p1")) is not None
    await settle(regions)
    for name in NAMES:
        assert await regions.read(name, table, key("p1")) is None
    assert regions.writes_seen(A) == collections.Counter({"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1})


async def test_a_batch_write_replicates_each_put_and_delete(
    regions: Regions, via_a: AwsBackend, table: str
) -> None:
    await via_a.call("PutItem", {"TableName": table, "Item": key("old")})
    await settle(regions)

    puts = [{"PutRequest": {"Item": {**key(f"p{i}", f"s{i}"), "i": {"N": str(i)}}}} for i in range(3)]
    answer = await via_a.call(
        "BatchWriteItem",
        {"RequestItems": {table: [*puts, {"DeleteRequest": {"Key": key("old")}}]}},
    )
    assert not answer.get("UnprocessedItems")
    assert regions.replicator.pending == 4
    await settle(regions)
    for name in (B, C):
        for i in range(3):
            assert await regions.read(name, table, key(f"p{i}", f"s{i}")) == {
                **key(f"p{i}", f"s{i}"),
                "i": {"N": str(i)},
            }
        assert await regions.read(name, table, key("old")) is None


async def test_a_transaction_replicates_its_writes_not_its_checks(
    regions: Regions, via_a: AwsBackend, table: str
) -> None:
    if isinstance(regions[A].process, DynaliteProcess):
        pytest.skip("dynalite has no transactions")
    for pk in ("updated", "deleted", "checked"):
        await via_a.call("PutItem", {"TableName": table, "Item": {**key(pk), "n": {"N": "1"}}})
    await settle(regions)

    await via_a.call(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": table, "Item": {**key("put"), "n": {"N": "7"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": key("updated"),
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Delete": {"TableName": table, "Key": key("deleted")}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key("checked"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        },
    )
    assert regions.replicator.pending == 3
    await settle(regions)
    for name in (B, C):
        assert await regions.read(name, table, key("put")) == {**key("put"), "n": {"N": "7"}}
        assert await regions.read(name, table, key("updated")) == {**key("updated"), "n": {"N": "2"}}
        assert await regions.read(name, table, key("deleted")) is None
        assert await regions.read(name, table, key("checked")) == {**key("checked"), "n": {"N": "1"}}


async def test_paused_replication_holds_copies_until_unpaused(
    regions: Regions, via_a: AwsBackend, table: str
) -> None:
    regions.replicator.delay_s = 0.05
    regions.replicator.paused = True
    await via_a.call("PutItem", {"TableName": table, "Item": key("p1")})
    with pytest.raises(TimeoutError, match="paused"):
        await regions.replicator.drain(timeout_s=0.3)  # six times the delay
    assert regions.replicator.pending == 1
    assert await regions.read(B, table, key("p1")) is None

    regions.replicator.paused = False
    await settle(regions)
    assert await regions.read(B, table, key("p1")) == key("p1")
    assert await regions.read(C, table, key("p1")) == key("p1")


async def test_replication_reaches_a_region_whose_proxy_is_down(
    regions: Regions, via_a: AwsBackend, via_b: AwsBackend, table: str
) -> None:
    await regions[B].proxy.go_down()
    with pytest.raises(BackendUnavailableError):
        await via_b.call("GetItem", {"TableName": table, "Key": key("p1")})
    await via_a.call("PutItem", {"TableName": table, "Item": key("p1")})
    await settle(regions)
    assert await regions.read(B, table, key("p1")) == key("p1")
    await regions[B].proxy.go_up()


async def test_conflicting_writes_converge_on_the_last_writer(
    regions: Regions, via_a: AwsBackend, via_b: AwsBackend, table: str
) -> None:
    # B writes after A, before A's write reaches it: A's older copy must not undo B's write.
    await via_a.call("PutItem", {"TableName": table, "Item": {**key("p1"), "v": s("from A")}})
    await asyncio.sleep(0.05)
    await via_b.call("PutItem", {"TableName": table, "Item": {**key("p1"), "v": s("from B")}})
    await settle(regions)
    for name in NAMES:
        assert await regions.read(name, table, key("p1")) == {**key("p1"), "v": s("from B")}


async def test_failed_and_direct_writes_are_not_replicated(
    regions: Regions, via_a: AwsBackend, table: str
) -> None:
    await regions.put(A, table, key("p1"))  # around the proxy: A only
    with pytest.raises(BackendError) as failed:
        await via_a.call(
            "PutItem",
            {"TableName": table, "Item": key("p1"), "ConditionExpression": "attribute_not_exists(pk)"},
        )
    assert failed.value.code == "ConditionalCheckFailedException"
    assert regions.replicator.pending == 0
    await asyncio.sleep(DELAY_S + 0.1)
    await settle(regions)
    assert await regions.read(B, table, key("p1")) is None
    assert regions.replicator.copied == collections.Counter()
    assert regions.writes_seen(A) == collections.Counter({"PutItem": 1})
