"""Expiry options on writes and expired items left out of reads, through the real server, on both emulators."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from dynamo_gateway.v1 import options_pb2, service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import Gateway
from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import TableSpec
from tests.support.backends import aws_backend_for
from tests.support.builders import item_map, py, status_details

from .conftest import Emulator, gateway_declaring

_numbers = itertools.count()
HOUR = 3600


@dataclass
class Expiring:
    stub: service_pb2_grpc.DynamoDBServiceStub
    gateway: Gateway
    table: str  # key pk/sk, TTL attribute expires_at
    plain: str  # no TTL declared

    async def put(self, item: dict[str, Any], table: str = "", **fields: Any) -> None:
        request = service_pb2.PutItemRequest(table_name=table or self.table, **fields)
        item_map(request.item, item)
        await self.stub.PutItem(request, timeout=30)

    async def get(self, pk: str, sk: str, **fields: Any) -> dict[str, Any] | None:
        request = service_pb2.GetItemRequest(table_name=self.table, consistent_read=True, **fields)
        item_map(request.key, {"pk": pk, "sk": sk})
        response = await self.stub.GetItem(request, timeout=30)
        return py(response.item) if response.found else None

    async def query_all(
        self, pk: str, limit: int = 0, **fields: Any
    ) -> tuple[list[dict[str, Any]], int, int]:
        """Every page of a query: the items, the summed Count and the number of pages."""
        request = service_pb2.QueryRequest(
            table_name=self.table,
            key_condition_expression="pk = :pk",
            limit=limit,
            consistent_read=True,
            **fields,
        )
        item_map(request.expression_attribute_values, {":pk": pk})
        items, count, pages = [], 0, 0
        while True:
            page = await self.stub.Query(request, timeout=30)
            items += [py(i) for i in page.items]
            count, pages = count + page.count, pages + 1
            if not page.last_evaluated_key:
                return items, count, pages
            request.exclusive_start_key.clear()
            request.exclusive_start_key.MergeFrom(page.last_evaluated_key)


@pytest.fixture
async def expiring(emulator: Emulator) -> AsyncIterator[Expiring]:
    n = next(_numbers)
    specs = [
        TableSpec(f"expiring-{n}", {"pk": "S", "sk": "S"}, "pk", "sk", ttl_attribute="expires_at"),
        TableSpec(f"lasting-{n}", {"pk": "S", "sk": "S"}, "pk", "sk"),
    ]
    async with gateway_declaring(emulator.endpoint_url, specs) as gateway:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            yield Expiring(
                service_pb2_grpc.DynamoDBServiceStub(channel), gateway, specs[0].name, specs[1].name
            )


# ---------------------------------------------------------------- expiry options on writes


async def test_expires_in_and_expires_at_set_the_ttl_attribute_in_epoch_seconds(expiring) -> None:
    before = time.time()
    await expiring.put({"pk": "a", "sk": "in"}, expires_in={"seconds": HOUR})
    await expiring.put({"pk": "a", "sk": "at"}, expires_at={"seconds": 2_000_000_000, "nanos": 1})
    update = service_pb2.UpdateItemRequest(
        table_name=expiring.table, update_expression="SET n = :n", expires_in={"seconds": 2 * HOUR}
    )
    item_map(update.key, {"pk": "a", "sk": "update"})
    item_map(update.expression_attribute_values, {":n": 1})
    await expiring.stub.UpdateItem(update, timeout=30)
    batch = service_pb2.BatchWriteItemRequest()
    put = batch.request_items[expiring.table].requests.add().put_request
    item_map(put.item, {"pk": "a", "sk": "batch"})
    put.expires_in.seconds = 3 * HOUR
    await expiring.stub.BatchWriteItem(batch, timeout=30)
    after = time.time()

    def expires(sk: str) -> int:
        item = expiring_items[sk]
        assert isinstance(item["expires_at"], int)  # whole epoch seconds, as DynamoDB's TTL wants
        return item["expires_at"]

    expiring_items = {i["sk"]: i for i in (await expiring.query_all("a"))[0]}
    assert before + HOUR <= expires("in") <= after + HOUR + 1
    assert expires("at") == 2_000_000_001  # rounded up: never earlier than asked
    assert before + 2 * HOUR <= expires("update") <= after + 2 * HOUR + 1
    assert expiring_items["update"]["n"] == 1
    assert before + 3 * HOUR <= expires("batch") <= after + 3 * HOUR + 1


async def test_expiry_options_are_refused_where_they_cannot_mean_anything(expiring) -> None:
    async def refused(table: str, item: dict[str, Any], **fields: Any) -> tuple[str, str]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await expiring.put(item, table, **fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violation = status_details(caught.value)["google.rpc.BadRequest"].field_violations[0]
        return violation.field, violation.description

    field, why = await refused(expiring.table, {"pk": "r", "sk": "1"}, expires_at={"seconds": 1_000_000_000})
    assert field == "expires_at" and "five years" in why
    field, why = await refused(
        expiring.table, {"pk": "r", "sk": "2"}, expires_at={"seconds": 1}, expires_in={"seconds": 1}
    )
    assert field == "expires_in" and "not both" in why
    field, why = await refused(
        expiring.table, {"pk": "r", "sk": "3", "expires_at": 2_000_000_000}, expires_in={"seconds": 60}
    )
    assert field == "expires_in" and "set one or the other" in why
    field, why = await refused(expiring.plain, {"pk": "r", "sk": "4"}, expires_in={"seconds": 60})
    assert field == "expires_in" and "declares no ttl_attribute" in why
    field, why = await refused(expiring.table, {"pk": "r", "sk": "5"}, expires_in={"seconds": -5})
    assert field == "expires_in" and "positive" in why
    assert (await expiring.query_all("r"))[0] == []  # none of them was written


# ---------------------------------------------------------------- expired items left out of reads


async def _live_and_expired(expiring: Expiring, pk: str, count: int) -> tuple[set[str], set[str]]:
    """`count` items in one partition, every other one expired an hour ago (DynamoDB has not
    deleted it yet); returns the sort keys of the live ones and of the expired ones."""
    now = int(time.time())
    live, expired = set(), set()
    for i in range(count):
        sk = f"{i:03d}"
        item = {"pk": pk, "sk": sk, "n": i}
        if i % 2:
            await expiring.put({**item, "expires_at": now - HOUR})
            expired.add(sk)
        else:
            await expiring.put({**item, "expires_at": now + HOUR} if i % 4 else item)
            live.add(sk)
    return live, expired


async def test_every_read_leaves_out_an_expired_item_and_shows_it_when_asked(expiring) -> None:
    await _live_and_expired(expiring, "m", 2)  # 000 live (no TTL at all), 001 expired
    # GetItem, also when its projection leaves the TTL attribute out.
    assert await expiring.get("m", "001") is None
    assert (await expiring.get("m", "001", include_expired=True) or {}).get("sk") == "001"
    assert await expiring.get("m", "001", projection_expression="sk") is None
    assert await expiring.get("m", "000", projection_expression="sk") == {"sk": "000"}
    # BatchGetItem.
    batch = service_pb2.BatchGetItemRequest()
    for sk in ("000", "001"):
        item_map(batch.request_items[expiring.table].keys.add().attributes, {"pk": "m", "sk": sk})
    got = await expiring.stub.BatchGetItem(batch, timeout=30)
    assert sorted(py(i)["sk"] for i in got.responses[expiring.table].items) == ["000"]
    batch.include_expired = True
    got = await expiring.stub.BatchGetItem(batch, timeout=30)
    assert sorted(py(i)["sk"] for i in got.responses[expiring.table].items) == ["000", "001"]
    # Query, Scan and ParallelScan.
    assert [i["sk"] for i in (await expiring.query_all("m"))[0]] == ["000"]
    assert [i["sk"] for i in (await expiring.query_all("m", include_expired=True))[0]] == ["000", "001"]
    scan = service_pb2.ScanRequest(table_name=expiring.table, consistent_read=True)
    assert [py(i)["sk"] for i in (await expiring.stub.Scan(scan, timeout=30)).items] == ["000"]
    scan.include_expired = True
    assert len((await expiring.stub.Scan(scan, timeout=30)).items) == 2
    parallel = service_pb2.ParallelScanRequest(table_name=expiring.table, total_segments=2)
    pages = [page async for page in expiring.stub.ParallelScan(parallel, timeout=30)]
    assert sorted(py(i)["sk"] for page in pages for i in page.items) == ["000"]
    parallel.include_expired = True
    pages = [page async for page in expiring.stub.ParallelScan(parallel, timeout=30)]
    assert sorted(py(i)["sk"] for page in pages for i in page.items) == ["000", "001"]


@pytest.mark.transactions
async def test_transact_get_leaves_out_an_expired_item_and_shows_it_when_asked(expiring) -> None:
    await _live_and_expired(expiring, "t", 2)
    request = service_pb2.TransactGetItemsRequest()
    for sk in ("000", "001"):
        get = request.transact_items.add().get
        get.table_name = expiring.table
        item_map(get.key, {"pk": "t", "sk": sk})
    answer = await expiring.stub.TransactGetItems(request, timeout=30)
    assert [r.found for r in answer.responses] == [True, False]
    request.include_expired = True
    answer = await expiring.stub.TransactGetItems(request, timeout=30)
    assert [r.found for r in answer.responses] == [True, True]


async def test_query_pages_and_counts_stay_right_when_expired_items_are_left_out(expiring) -> None:
    live, expired = await _live_and_expired(expiring, "p", 20)
    for limit in (0, 3, 7):
        items, count, pages = await expiring.query_all("p", limit=limit)
        assert [i["sk"] for i in items] == sorted(live)  # each once, in order, across pages
        assert count == len(live)
        if limit:
            assert pages >= 20 // limit  # Limit counts items evaluated, expired ones included
    _, count, _ = await expiring.query_all("p", select=options_pb2.SELECT_COUNT)
    assert count == len(live)
    _, count, _ = await expiring.query_all("p", select=options_pb2.SELECT_COUNT, include_expired=True)
    assert count == len(live) + len(expired)
    # The caller's own filter still applies, ANDed with the gateway's.
    request = service_pb2.QueryRequest(
        table_name=expiring.table, key_condition_expression="pk = :pk", filter_expression="n < :upto"
    )
    item_map(request.expression_attribute_values, {":pk": "p", ":upto": 10})
    page = await expiring.stub.Query(request, timeout=30)
    assert [py(i)["sk"] for i in page.items] == sorted(s for s in live if s < "010")


async def test_hidden_items_are_counted_in_a_metric(expiring) -> None:
    await _live_and_expired(expiring, "c", 4)
    metric = expiring.gateway.telemetry.metrics.expired_items_hidden
    before = metric.labels(expiring.table, "GetItem")._value.get()
    assert await expiring.get("c", "001") is None
    assert metric.labels(expiring.table, "GetItem")._value.get() == before + 1


async def test_a_table_made_elsewhere_gets_its_ttl_attribute_from_dynamodb(emulator: Emulator) -> None:
    name = f"elsewhere-{next(_numbers)}"
    admin = await aws_backend_for(emulator.endpoint_url)
    try:
        await admin.call(
            "CreateTable",
            {
                "TableName": name,
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        )
        try:
            await admin.call(
                "UpdateTimeToLive",
                {"TableName": name, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "gone_at"}},
            )
        except BackendError as error:
            pytest.skip(f"{emulator.kind} has no UpdateTimeToLive ({error.code})")
        past = int(time.time()) - HOUR
        await admin.call(
            "PutItem", {"TableName": name, "Item": {"pk": {"S": "x"}, "gone_at": {"N": str(past)}}}
        )
    finally:
        await admin.close()
    # The tables file only declares the table (create: false): its TTL attribute is DynamoDB's.
    backend = await aws_backend_for(emulator.endpoint_url)
    gateway = Gateway(
        Settings(port=0, backend="aws", grace_period_s=0),
        backend,
        endpoint=emulator.endpoint_url,
        declared_tables=[TableSpec(name, {}, "", create=False)],
    )
    await gateway.start()
    try:
        assert gateway.ttl_attributes == {name: "gone_at"}
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = service_pb2_grpc.DynamoDBServiceStub(channel)
            request = service_pb2.GetItemRequest(table_name=name)
            item_map(request.key, {"pk": "x"})
            assert not (await stub.GetItem(request, timeout=30)).found
            request.include_expired = True
            assert (await stub.GetItem(request, timeout=30)).found
    finally:
        await gateway.stop(0)
