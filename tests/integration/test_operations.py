"""Every RPC and its options, through the generated stub and the typed client, on each emulator."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import grpc
import pytest

from dynamo_gateway import GatewayClient, TransactConditionCheck, TransactDelete, TransactPut, TransactUpdate
from dynamo_gateway.v1 import options_pb2, service_pb2, table_pb2
from tests.support.builders import item_map, py

EVERY_TYPE = {
    "pk": "user#1",
    "sk": "profile",
    "s": "héllo",
    "empty_s": "",
    "n_int": 42,
    "n_38_digits": Decimal("1234567890123456789012345678901234567.8"),
    "n_tiny": Decimal("1E-130"),
    "n_negative": -7,
    "b": bytes(range(256)),
    "ss": {"a", "b"},
    "ns": {1, Decimal("2.5")},
    "bs": {b"\x00", b"\xff"},
    "m": {"nested": {"deeper": [1, "two", None, True]}, "empty": {}},
    "l": [1, "x", b"y", {"z": False}, []],
    "null": None,
    "bool": True,
}


async def test_put_get_round_trips_every_type(client: GatewayClient, table: str) -> None:
    await client.put_item(table, EVERY_TYPE)
    assert await client.get_item(table, {"pk": "user#1", "sk": "profile"}, consistent_read=True) == EVERY_TYPE


async def test_get_missing_item_is_not_found_not_an_error(stub, table: str) -> None:
    request = service_pb2.GetItemRequest(table_name=table)
    item_map(request.key, {"pk": "nobody", "sk": "x"})
    response = await stub.GetItem(request)
    assert not response.found
    assert not response.item


async def test_get_with_projection_and_names(client: GatewayClient, table: str) -> None:
    await client.put_item(table, {"pk": "p", "sk": "s", "name": "Ada", "size": 3, "other": "x"})
    item = await client.get_item(
        table, {"pk": "p", "sk": "s"}, projection="#n, #s", names={"#n": "name", "#s": "size"}
    )
    assert item == {"name": "Ada", "size": 3}


async def test_put_returns_old_item_and_honours_condition(client: GatewayClient, table: str) -> None:
    key = {"pk": "p", "sk": "s"}
    assert await client.put_item(table, {**key, "v": 1}, return_old=True) is None
    old = await client.put_item(
        table,
        {**key, "v": 2},
        condition="#v = :one",
        names={"#v": "v"},
        values={":one": 1},
        return_old=True,
    )
    assert old == {**key, "v": 1}
    assert await client.get_item(table, key) == {**key, "v": 2}


@pytest.mark.parametrize(
    ("return_values", "expected"),
    [
        ("ALL_NEW", {"pk": "p", "sk": "s", "count": 11, "tags": {"a", "b"}}),
        ("UPDATED_NEW", {"count": 11, "tags": {"a", "b"}}),
        # REMOVE updates an attribute too, so it is among the updated old values.
        ("UPDATED_OLD", {"count": 10, "tags": {"a"}, "gone": "x"}),
        ("ALL_OLD", {"pk": "p", "sk": "s", "count": 10, "tags": {"a"}, "gone": "x"}),
        ("NONE", None),
    ],
)
async def test_update_expressions_and_return_values(
    client: GatewayClient, table: str, return_values: str, expected: object
) -> None:
    key = {"pk": "p", "sk": "s"}
    await client.put_item(table, {**key, "count": 10, "tags": {"a"}, "gone": "x"})
    result = await client.update_item(
        table,
        key,
        "SET #c = #c + :one ADD tags :b REMOVE gone",
        condition="attribute_exists(pk)",
        names={"#c": "count"},
        values={":one": 1, ":b": {"b"}},
        return_values=return_values,
    )
    assert result == expected
    assert await client.get_item(table, key, consistent_read=True) == {**key, "count": 11, "tags": {"a", "b"}}


async def test_delete_returns_old_item(client: GatewayClient, table: str) -> None:
    key = {"pk": "p", "sk": "s"}
    await client.put_item(table, {**key, "v": "old"})
    assert await client.delete_item(
        table, key, condition="v = :v", values={":v": "old"}, return_old=True
    ) == {
        **key,
        "v": "old",
    }
    assert await client.get_item(table, key) is None


async def _seed(client: GatewayClient, table: str, count: int, pk: str = "user#1") -> list[dict]:
    items = [
        {
            "pk": pk,
            "sk": f"order#{i:03d}",
            "gsi1pk": f"status#{'open' if i % 2 else 'done'}",
            "gsi1sk": f"{i:03d}",
            "created_at": 1000 - i,
            "amount": i,
        }
        for i in range(count)
    ]
    for start in range(0, count, 25):
        await client.batch_write(puts={table: items[start : start + 25]})
    return items


async def test_query_paginates_through_many_pages(client: GatewayClient, table: str) -> None:
    items = await _seed(client, table, 40)
    await _seed(client, table, 3, pk="user#2")
    pages = []
    start = None
    while True:
        page = await client.query_page(
            table, "pk = :pk", values={":pk": "user#1"}, page_size=3, exclusive_start_key=start
        )
        pages.append(page)
        start = page.last_evaluated_key
        if start is None:
            break
    assert len(pages) >= 14
    assert [i for p in pages for i in p.items] == items
    # The iterator follows the same pages.
    assert [i async for i in client.query(table, "pk = :pk", values={":pk": "user#1"}, page_size=7)] == items


async def test_query_options(client: GatewayClient, stub, table: str) -> None:
    items = await _seed(client, table, 10)
    backwards = [
        i
        async for i in client.query(
            table,
            "pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": "user#1", ":prefix": "order#00"},
            forward=False,
            consistent_read=True,
        )
    ]
    assert backwards == list(reversed(items))
    filtered = [
        i
        async for i in client.query(
            table,
            "pk = :pk",
            filter="amount >= :min",
            projection="sk, amount",
            values={":pk": "user#1", ":min": 7},
        )
    ]
    assert filtered == [{"sk": f"order#00{i}", "amount": i} for i in (7, 8, 9)]
    request = service_pb2.QueryRequest(
        table_name=table,
        key_condition_expression="pk = :pk",
        select=options_pb2.SELECT_COUNT,
        return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_TOTAL,
    )
    item_map(request.expression_attribute_values, {":pk": "user#1"})
    response = await stub.Query(request)
    assert response.count == 10
    assert not response.items
    assert response.consumed_capacity.table_name == table
    assert response.consumed_capacity.capacity_units > 0


async def test_query_global_and_local_secondary_indexes(client: GatewayClient, table: str) -> None:
    items = await _seed(client, table, 10)
    open_orders = [
        i async for i in client.query(table, "gsi1pk = :s", index="gsi1", values={":s": "status#open"})
    ]
    assert open_orders == [i for i in items if i["amount"] % 2]
    # lsi1 sorts the partition by created_at, which falls as the order number rises.
    by_creation = [
        i
        async for i in client.query(
            table, "pk = :pk AND created_at < :t", index="lsi1", values={":pk": "user#1", ":t": 995}
        )
    ]
    assert by_creation == sorted((i for i in items if i["created_at"] < 995), key=lambda i: i["created_at"])


async def test_scan_paginates_and_filters(client: GatewayClient, table: str) -> None:
    items = await _seed(client, table, 30)
    scanned = [i async for i in client.scan(table, page_size=4)]
    assert sorted(scanned, key=lambda i: i["sk"]) == items
    big = [i async for i in client.scan(table, filter="amount > :n", values={":n": 25})]
    assert sorted(i["amount"] for i in big) == [26, 27, 28, 29]


async def test_scan_segments_cover_the_table_once(client: GatewayClient, table: str) -> None:
    items = await _seed(client, table, 30)
    seen = []
    for segment in range(3):
        seen += [i async for i in client.scan(table, segment=segment, total_segments=3, page_size=5)]
    assert sorted(i["sk"] for i in seen) == [i["sk"] for i in items]


async def test_parallel_scan_streams_every_item_exactly_once(client: GatewayClient, table: str) -> None:
    items = await _seed(client, table, 60)
    pages = [p async for p in client.parallel_scan(table, total_segments=4, page_size=5)]
    seen = [i["sk"] for p in pages for i in p.items]
    assert sorted(seen) == [i["sk"] for i in items]
    assert {p.segment for p in pages} <= {0, 1, 2, 3}
    done = [p.segment for p in pages if p.segment_done]
    assert sorted(done) == [0, 1, 2, 3]
    for page in pages:
        assert (page.resume_key is None) == page.segment_done


async def test_parallel_scan_resumes_from_segment_keys(client: GatewayClient, table: str) -> None:
    items = await _seed(client, table, 40)
    first_pass: list[str] = []
    resume: dict[int, dict | None] = {}
    async for page in client.parallel_scan(table, total_segments=2, page_size=4):
        first_pass += [i["sk"] for i in page.items]
        resume[page.segment] = page.resume_key
        if len(first_pass) >= 12:
            break  # interrupted midway
    unfinished = {s: resume.get(s) for s in (0, 1) if s not in resume or resume[s] is not None}
    rest = [
        i["sk"]
        async for p in client.parallel_scan(table, 2, page_size=4, resume_from=unfinished)
        for i in p.items
    ]
    assert sorted(first_pass + rest) == [i["sk"] for i in items]


async def test_parallel_scan_with_filter_projection_and_capacity(
    stub, client: GatewayClient, table: str
) -> None:
    await _seed(client, table, 20)
    request = service_pb2.ParallelScanRequest(
        table_name=table,
        total_segments=3,
        filter_expression="amount < :n",
        projection_expression="sk",
        return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_TOTAL,
    )
    item_map(request.expression_attribute_values, {":n": 5})
    messages = [m async for m in stub.ParallelScan(request)]
    assert sorted(py(i)["sk"] for m in messages for i in m.items) == [f"order#00{i}" for i in range(5)]
    assert all(set(py(i)) == {"sk"} for m in messages for i in m.items)
    assert all(m.consumed_capacity.table_name == table for m in messages)


async def test_batch_write_and_get_across_tables(client: GatewayClient, table: str, hash_table: str) -> None:
    result = await client.batch_write(
        puts={
            table: [{"pk": "a", "sk": str(i), "v": i} for i in range(5)],
            hash_table: [{"pk": "h1"}, {"pk": "h2"}],
        }
    )
    assert not result.unprocessed_puts
    await client.batch_write(deletes={table: [{"pk": "a", "sk": "0"}], hash_table: [{"pk": "h2"}]})
    items, unprocessed = await client.batch_get(
        {table: [{"pk": "a", "sk": str(i)} for i in range(5)], hash_table: [{"pk": "h1"}, {"pk": "h2"}]},
        consistent_read=True,
    )
    assert not unprocessed
    assert sorted(items[table], key=lambda i: i["sk"]) == [
        {"pk": "a", "sk": str(i), "v": i} for i in range(1, 5)
    ]
    assert items[hash_table] == [{"pk": "h1"}]


async def test_batch_get_with_projection_and_capacity(stub, client: GatewayClient, table: str) -> None:
    await client.put_item(table, {"pk": "a", "sk": "1", "keep": 1, "drop": 2})
    request = service_pb2.BatchGetItemRequest(
        return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_TOTAL
    )
    entry = request.request_items[table]
    entry.projection_expression = "#k"
    entry.expression_attribute_names["#k"] = "keep"
    item_map(entry.keys.add().attributes, {"pk": "a", "sk": "1"})
    response = await stub.BatchGetItem(request)
    assert [py(i) for i in response.responses[table].items] == [{"keep": 1}]
    assert [c.table_name for c in response.consumed_capacity] == [table]


async def test_write_options_consumed_capacity_and_collection_metrics(stub, table: str) -> None:
    request = service_pb2.PutItemRequest(
        table_name=table,
        return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_TOTAL,
        return_item_collection_metrics=options_pb2.RETURN_ITEM_COLLECTION_METRICS_SIZE,
    )
    item_map(request.item, {"pk": "c", "sk": "1", "created_at": 5})
    response = await stub.PutItem(request)
    assert response.consumed_capacity.table_name == table
    assert response.consumed_capacity.capacity_units > 0


@pytest.mark.transactions
async def test_transact_write_then_get(client: GatewayClient, table: str, hash_table: str) -> None:
    await client.put_item(table, {"pk": "acct", "sk": "a", "balance": 100})
    await client.put_item(table, {"pk": "acct", "sk": "gone"})
    await client.put_item(table, {"pk": "acct", "sk": "open"})
    await client.transact_write(
        [
            TransactUpdate(table, {"pk": "acct", "sk": "a"}, "SET balance = balance - :x", values={":x": 30}),
            TransactPut(hash_table, {"pk": "ledger#1", "amount": 30}, condition="attribute_not_exists(pk)"),
            TransactDelete(table, {"pk": "acct", "sk": "gone"}),
            TransactConditionCheck(table, {"pk": "acct", "sk": "open"}, "attribute_exists(pk)"),
        ],
        client_request_token="transfer-0001",
    )
    results = await client.transact_get(
        [
            (table, {"pk": "acct", "sk": "a"}),
            (hash_table, {"pk": "ledger#1"}),
            (table, {"pk": "acct", "sk": "gone"}),
        ]
    )
    assert results == [{"pk": "acct", "sk": "a", "balance": 70}, {"pk": "ledger#1", "amount": 30}, None]


async def test_describe_table_shows_keys_indexes_and_stream(gateway, emulator, client: GatewayClient) -> None:
    from dynamo_gateway_server.tables import TableSpec
    from tests.integration.conftest import create_table
    from tests.support.tables import APP_TABLE

    name = await create_table(
        gateway, TableSpec(**{**APP_TABLE.__dict__, "name": "described", "stream_view_type": "NEW_IMAGE"})
    )
    description = await client.describe_table(name)
    assert description.table_name == "described"
    assert description.table_status == "ACTIVE"
    assert [(k.attribute_name, k.key_type) for k in description.key_schema] == [
        ("pk", table_pb2.KEY_TYPE_HASH),
        ("sk", table_pb2.KEY_TYPE_RANGE),
    ]
    assert [i.index_name for i in description.global_secondary_indexes] == ["gsi1"]
    assert [i.index_name for i in description.local_secondary_indexes] == ["lsi1"]
    gsi = description.global_secondary_indexes[0]
    assert [k.attribute_name for k in gsi.key_schema] == ["gsi1pk", "gsi1sk"]
    assert gsi.projection.projection_type == table_pb2.PROJECTION_TYPE_ALL
    assert {(a.attribute_name, a.attribute_type) for a in description.attribute_definitions} >= {
        ("created_at", table_pb2.SCALAR_ATTRIBUTE_TYPE_N)
    }
    if emulator.kind != "dynalite":  # dynalite has no streams
        assert description.stream_specification.stream_enabled
        assert description.stream_specification.stream_view_type == "NEW_IMAGE"
    assert description.creation_date_time > 0


async def test_concurrent_calls_share_one_backend_client(client: GatewayClient, hash_table: str) -> None:
    await asyncio.gather(*(client.put_item(hash_table, {"pk": f"k{i}", "v": i}) for i in range(40)))
    got = await asyncio.gather(*(client.get_item(hash_table, {"pk": f"k{i}"}) for i in range(40)))
    assert got == [{"pk": f"k{i}", "v": i} for i in range(40)]


async def test_raw_stub_accepts_dynamodb_json_names(stub, hash_table: str) -> None:
    # The JSON names of AttributeValue are DynamoDB's type letters, as grpcurl users type them.
    from google.protobuf import json_format

    request = json_format.Parse(
        json.dumps(
            {"table_name": hash_table, "item": {"pk": {"S": "j"}, "n": {"N": "1.50"}, "z": {"NULL": True}}}
        ),
        service_pb2.PutItemRequest(),
    )
    await stub.PutItem(request)
    get = service_pb2.GetItemRequest(table_name=hash_table)
    item_map(get.key, {"pk": "j"})
    response = await stub.GetItem(get)
    as_json = json_format.MessageToDict(response)
    assert as_json["item"]["pk"] == {"S": "j"}
    assert as_json["item"]["z"] == {"NULL": True}
    assert Decimal(as_json["item"]["n"]["N"]) == Decimal("1.5")


async def test_unknown_method_is_unimplemented(channel) -> None:
    call = channel.unary_unary("/dynamo_gateway.v1.DynamoDBService/CreateTable")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(b"")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    ("select", "projection", "expected_keys"),
    [
        (options_pb2.SELECT_ALL_ATTRIBUTES, "", {"pk", "sk", "gsi1pk", "gsi1sk", "created_at", "amount"}),
        (
            options_pb2.SELECT_ALL_PROJECTED_ATTRIBUTES,
            "",
            {"pk", "sk", "gsi1pk", "gsi1sk", "created_at", "amount"},
        ),
        (options_pb2.SELECT_SPECIFIC_ATTRIBUTES, "amount", {"amount"}),
    ],
)
async def test_query_select_on_an_index(
    stub, client: GatewayClient, table: str, select: int, projection: str, expected_keys: set[str]
) -> None:
    await _seed(client, table, 4)
    request = service_pb2.QueryRequest(
        table_name=table,
        index_name="gsi1",
        key_condition_expression="gsi1pk = :s",
        select=select,
        projection_expression=projection,
    )
    item_map(request.expression_attribute_values, {":s": "status#open"})
    response = await stub.Query(request)
    assert response.count == 2
    assert [set(py(i)) for i in response.items] == [expected_keys, expected_keys]


async def test_consumed_capacity_by_index(emulator, stub, client: GatewayClient, table: str) -> None:
    await _seed(client, table, 2)
    request = service_pb2.QueryRequest(
        table_name=table,
        index_name="gsi1",
        key_condition_expression="gsi1pk = :s",
        return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_INDEXES,
    )
    item_map(request.expression_attribute_values, {":s": "status#open"})
    capacity = (await stub.Query(request)).consumed_capacity
    assert capacity.table_name == table
    assert capacity.capacity_units > 0
    if emulator.kind == "moto":
        # moto files GSI capacity under LocalSecondaryIndexes; DynamoDB's documentation (and
        # dynalite) put it under GlobalSecondaryIndexes. The gateway passes on what it gets.
        assert "gsi1" in capacity.local_secondary_indexes
    else:
        assert "gsi1" in capacity.global_secondary_indexes
