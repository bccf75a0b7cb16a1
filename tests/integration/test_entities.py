"""Entities through the real server, on both emulators: keys built from the declared templates."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from dynamo_gateway import GatewayClient, InvalidParameterError, TransactDelete, TransactPut, TransactUpdate
from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.tables import TableSpec, load_tables_file
from tests.integration.conftest import Emulator, gateway_declaring

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tables.yaml"
_numbers = itertools.count()


def _example_app(name: str) -> TableSpec:
    """examples/tables.yaml's app table and its entities, under another name; without TTL and
    streams, which dynalite lacks."""
    (app,) = load_tables_file(EXAMPLE)
    return dataclasses.replace(app, name=name, ttl_attribute=None, stream_view_type=None)


@pytest.fixture
async def app(
    emulator: Emulator,
) -> AsyncIterator[tuple[GatewayClient, service_pb2_grpc.DynamoDBServiceStub, str]]:
    spec = _example_app(f"entities-{next(_numbers)}")
    async with (
        gateway_declaring(emulator.endpoint_url, [spec]) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        yield GatewayClient(channel, timeout_s=10), service_pb2_grpc.DynamoDBServiceStub(channel), spec.name


ORDER = {"user_id": "42", "order_id": "o-7", "total": 12}
ORDER_KEY = {"user_id": "42", "order_id": "o-7"}


async def test_a_write_by_entity_gets_every_key_from_its_templates(
    app: tuple[GatewayClient, object, str],
) -> None:
    client, _, table = app
    await client.put_item(table, ORDER, entity="order")
    stored = await client.get_item(table, {"pk": "USER#42", "sk": "ORDER#o-7"}, consistent_read=True)
    assert stored == {
        **ORDER,
        "pk": "USER#42",
        "sk": "ORDER#o-7",
        "gsi1pk": "ORDER#o-7",
        "gsi1sk": "USER#42",
        "_entity": "order",
    }
    # The overloaded index finds it by the order id alone.
    found = [
        item async for item in client.query(table, "gsi1pk = :o", values={":o": "ORDER#o-7"}, index="gsi1")
    ]
    assert [item["order_id"] for item in found] == ["o-7"]


async def test_a_read_by_entity_builds_the_key_and_says_the_entity(
    app: tuple[GatewayClient, service_pb2_grpc.DynamoDBServiceStub, str],
) -> None:
    client, stub, table = app
    await client.put_item(table, ORDER, entity="order")
    await client.put_item(table, {"user_id": "42", "name": "Ada"}, entity="user")
    assert await client.get_item(
        table, ORDER_KEY, entity="order", consistent_read=True
    ) == await client.get_item(table, {"pk": "USER#42", "sk": "ORDER#o-7"}, consistent_read=True)
    request = service_pb2.GetItemRequest(table_name=table, entity="user", consistent_read=True)
    request.key["user_id"].s = "42"
    answer = await stub.GetItem(request)
    assert answer.found and answer.entity == "user" and answer.item["sk"].s == "PROFILE"
    plain = service_pb2.GetItemRequest(table_name=table, consistent_read=True)
    plain.key["pk"].s, plain.key["sk"].s = "USER#42", "ORDER#o-7"
    assert (await stub.GetItem(plain)).entity == "order"  # an item says its entity however it is read


async def test_a_delete_by_entity_removes_the_item(app: tuple[GatewayClient, object, str]) -> None:
    client, _, table = app
    await client.put_item(table, ORDER, entity="order")
    old = await client.delete_item(table, ORDER_KEY, entity="order", return_old=True)
    assert old is not None and old["total"] == 12
    assert await client.get_item(table, ORDER_KEY, entity="order", consistent_read=True) is None


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        ("put-missing", "item.order_id", "entity order needs order_id to build its keys"),
        ("put-disagreeing", "item.pk", "entity order makes it"),
        ("put-unknown", "entity", "has no entity 'invoice' (it has order, user)"),
        ("get-extra", "key.total", "total is not part of it"),
    ],
)
async def test_a_write_or_read_the_model_cannot_build_is_refused_naming_the_field(
    app: tuple[GatewayClient, object, str], call: str, field: str, words: str
) -> None:
    client, _, table = app
    with pytest.raises(InvalidParameterError) as refused:
        if call == "put-missing":
            await client.put_item(table, {"user_id": "42"}, entity="order")
        elif call == "put-disagreeing":
            await client.put_item(table, {**ORDER, "pk": "USER#1"}, entity="order")
        elif call == "put-unknown":
            await client.put_item(table, ORDER, entity="invoice")
        else:
            await client.get_item(table, {**ORDER_KEY, "total": 1}, entity="order")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in refused.value.field_violations] == [field]
    assert words in refused.value.message
    assert await client.get_item(table, {"pk": "USER#42", "sk": "ORDER#o-7"}) is None  # nothing written


async def test_describe_table_lists_the_entities(
    app: tuple[GatewayClient, service_pb2_grpc.DynamoDBServiceStub, str],
) -> None:
    _, stub, table = app
    declarations = (
        await stub.DescribeTable(service_pb2.DescribeTableRequest(table_name=table))
    ).table.declarations
    assert declarations.entity_attribute == "_entity"
    entities = {entity.name: entity for entity in declarations.entities}
    assert set(entities) == {"user", "order"}
    assert dict(entities["order"].key_templates) == {
        "pk": "USER#{user_id}",
        "sk": "ORDER#{order_id}",
        "gsi1pk": "ORDER#{order_id}",
        "gsi1sk": "USER#{user_id}",
    }
    assert list(entities["order"].indexes) == ["gsi1"] and list(entities["user"].indexes) == []


async def test_writes_without_an_entity_work_as_before(app: tuple[GatewayClient, object, str]) -> None:
    client, _, table = app
    await client.put_item(table, {"pk": "free#1", "sk": "x", "note": "no entity"})
    assert await client.get_item(table, {"pk": "free#1", "sk": "x"}, consistent_read=True) == {
        "pk": "free#1",
        "sk": "x",
        "note": "no entity",
    }


async def test_a_query_by_entity_builds_the_key_condition_and_keeps_only_its_items(
    app: tuple[GatewayClient, object, str],
) -> None:
    client, _, table = app
    await client.put_item(table, {"user_id": "42", "name": "Ada"}, entity="user")
    for number, total in ((1, 5), (2, 50), (3, 500)):
        await client.put_item(
            table, {"user_id": "42", "order_id": f"o-{number}", "total": total}, entity="order"
        )
    await client.put_item(table, {"user_id": "43", "order_id": "o-9", "total": 1}, entity="order")

    page = await client.query_page(table, entity="order", entity_key={"user_id": "42"}, consistent_read=True)
    assert [item["order_id"] for item in page.items] == ["o-1", "o-2", "o-3"]
    assert page.entities == ["order"] * 3  # the user's profile shares the partition, not the entity
    # Page by page, with the caller's own filter beside the gateway's.
    pages = client.query(
        table,
        entity="order",
        entity_key={"user_id": "42"},
        filter="#t >= :least",
        names={"#t": "total"},
        values={":least": 50},
        page_size=1,
        forward=False,
        consistent_read=True,
    )
    assert [item["order_id"] async for item in pages] == ["o-3", "o-2"]
    exact = await client.query_page(table, entity="order", entity_key={"user_id": "42", "order_id": "o-2"})
    assert [item["total"] for item in exact.items] == [50]
    profile = await client.query_page(
        table, entity="user", entity_key={"user_id": "42"}, consistent_read=True
    )
    assert [item["name"] for item in profile.items] == ["Ada"] and profile.entities == ["user"]
    by_index = await client.query_page(table, entity="order", entity_key={"order_id": "o-9"}, index="gsi1")
    assert [item["user_id"] for item in by_index.items] == ["43"]


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        (
            {"entity": "user", "entity_key": {"user_id": "42"}, "index": "gsi1"},
            "index_name",
            "a sparse index",
        ),
        ({"entity": "order", "entity_key": {"order_id": "o-1"}}, "entity_key.user_id", "needs user_id"),
        (
            {"entity": "order", "entity_key": {"user_id": "42", "total": 1}},
            "entity_key.total",
            "in neither key",
        ),
    ],
    ids=["not-in-index", "no-partition", "unknown-attribute"],
)
async def test_a_query_by_entity_the_model_cannot_build_is_refused(
    app: tuple[GatewayClient, object, str], options: dict[str, object], field: str, words: str
) -> None:
    client, _, table = app
    with pytest.raises(InvalidParameterError) as refused:
        await client.query_page(table, **options)  # type: ignore[arg-type]
    assert [f for f, _ in refused.value.field_violations] == [field]
    assert words in refused.value.message


async def test_an_update_by_entity_keeps_the_item_what_a_put_would_make_it(
    app: tuple[GatewayClient, object, str],
) -> None:
    client, _, table = app
    # An update that creates the item: its keys, index keys and entity are all there.
    new = await client.update_item(
        table,
        ORDER_KEY,
        "SET #t = :t",
        names={"#t": "total"},
        values={":t": 7},
        return_values="ALL_NEW",
        entity="order",
    )
    assert new == {
        **ORDER,
        "total": 7,
        "pk": "USER#42",
        "sk": "ORDER#o-7",
        "gsi1pk": "ORDER#o-7",
        "gsi1sk": "USER#42",
        "_entity": "order",
    }
    with pytest.raises(InvalidParameterError) as refused:
        await client.update_item(table, ORDER_KEY, "SET gsi1pk = :x", values={":x": "mine"}, entity="order")
    assert "which entity order builds" in refused.value.message


async def test_batch_and_transaction_entries_by_entity(
    emulator: Emulator, app: tuple[GatewayClient, object, str]
) -> None:
    client, _, table = app
    orders = [{"user_id": "42", "order_id": f"b-{n}"} for n in range(3)]
    result = await client.batch_write({table: orders}, entity="order")
    assert not result.unprocessed_puts
    page = await client.query_page(table, entity="order", entity_key={"user_id": "42"}, consistent_read=True)
    assert [item["order_id"] for item in page.items] == ["b-0", "b-1", "b-2"]
    await client.batch_write(deletes={table: [{"user_id": "42", "order_id": "b-0"}]}, entity="order")
    assert (
        await client.get_item(
            table, {"user_id": "42", "order_id": "b-0"}, entity="order", consistent_read=True
        )
        is None
    )
    with pytest.raises(InvalidParameterError) as refused:
        await client.batch_write({table: [{"user_id": "42"}]}, entity="order")
    assert [f for f, _ in refused.value.field_violations] == [
        f"request_items[{table}].requests[0].put_request.item.order_id"
    ]
    if not emulator.supports_transactions:
        return
    await client.transact_write(
        [
            TransactPut(table, {"user_id": "42", "order_id": "t-1"}, entity="order"),
            TransactUpdate(
                table,
                {"user_id": "42", "order_id": "b-1"},
                "SET paid = :y",
                values={":y": True},
                entity="order",
            ),
            TransactDelete(table, {"user_id": "42", "order_id": "b-2"}, entity="order"),
        ]
    )
    page = await client.query_page(table, entity="order", entity_key={"user_id": "42"}, consistent_read=True)
    assert [(item["order_id"], item.get("paid")) for item in page.items] == [("b-1", True), ("t-1", None)]


async def test_a_collection_reads_the_entities_that_share_a_partition(
    app: tuple[GatewayClient, object, str],
) -> None:
    client, _, table = app
    await client.put_item(table, {"user_id": "42", "name": "Ada"}, entity="user")
    await client.put_item(table, ORDER, entity="order")
    await client.put_item(table, {"pk": "USER#42", "sk": "NOTE#1"})  # in the partition, no entity
    page = await client.query_page(
        table, collection="user_with_orders", entity_key={"user_id": "42"}, consistent_read=True
    )
    assert [(item["sk"], entity) for item, entity in zip(page.items, page.entities, strict=True)] == [
        ("ORDER#o-7", "order"),
        ("PROFILE", "user"),
    ]
    with pytest.raises(InvalidParameterError) as refused:
        await client.query_page(
            table, collection="user_with_orders", entity_key={"user_id": "42", "order_id": "x"}
        )
    assert [f for f, _ in refused.value.field_violations] == ["entity_key.order_id"]


async def test_batch_and_transactional_reads_by_entity(
    emulator: Emulator, app: tuple[GatewayClient, service_pb2_grpc.DynamoDBServiceStub, str]
) -> None:
    client, stub, table = app
    for number in range(3):
        await client.put_item(
            table, {"user_id": "42", "order_id": f"r-{number}", "n": number}, entity="order"
        )
    keys = [{"user_id": "42", "order_id": f"r-{number}"} for number in (2, 0, 9)]
    items, unprocessed = await client.batch_get({table: keys}, consistent_read=True, entity="order")
    assert sorted(item["n"] for item in items[table]) == [0, 2] and not unprocessed
    request = service_pb2.BatchGetItemRequest()
    request.request_items[table].entity = "order"
    request.request_items[table].keys.add().attributes["user_id"].s = "42"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.BatchGetItem(request)
    assert "invalid request_items[" in (refused.value.details() or "") and "needs order_id" in (
        refused.value.details() or ""
    )
    request.request_items[table].keys[0].attributes["order_id"].s = "r-1"
    answer = await stub.BatchGetItem(request)
    assert [item.entity for item in answer.responses[table].items] == ["order"]
    if emulator.supports_transactions:
        got = await client.transact_get([(table, keys[0]), (table, keys[2])], entity="order")
        assert got[0] is not None and got[0]["n"] == 2 and got[1] is None


EVENTS_TABLES = """\
tables:
  - name: events
    attributes: {pk: S, sk: S}
    key: {partition: pk, sort: sk}
    entities:
      - name: event
        attributes: {user_id: S, day: S, event_id: S}
        keys: {pk: "USER#{user_id}", sk: "EVENT#{day}#{event_id}"}
"""


async def test_a_range_of_days_by_entity(emulator: Emulator, tmp_path: Path) -> None:
    (tables_file := tmp_path / "tables.yaml").write_text(EVENTS_TABLES)
    (spec,) = load_tables_file(tables_file)
    spec = dataclasses.replace(spec, name=f"events-{next(_numbers)}")
    async with (
        gateway_declaring(emulator.endpoint_url, [spec]) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        client = GatewayClient(channel, timeout_s=10)
        for day in ("2026-11-30", "2026-12-01", "2026-12-03", "2026-12-05", "2026-12-06"):
            for event_id in ("a", "b"):
                await client.put_item(
                    spec.name, {"user_id": "42", "day": day, "event_id": event_id}, entity="event"
                )
        page = await client.query_page(
            spec.name,
            entity="event",
            entity_key={"user_id": "42", "day": "2026-12-01"},
            entity_key_to={"day": "2026-12-05"},
            consistent_read=True,
        )
    assert [(item["day"], item["event_id"]) for item in page.items] == [
        ("2026-12-01", "a"),
        ("2026-12-01", "b"),
        ("2026-12-03", "a"),
        ("2026-12-03", "b"),
        ("2026-12-05", "a"),
        ("2026-12-05", "b"),
    ]
