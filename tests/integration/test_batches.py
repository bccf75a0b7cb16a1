"""Batches beyond DynamoDB's per-call limits, split by the gateway, on each emulator."""

from __future__ import annotations

import grpc
import pytest

from dynamo_gateway import InvalidParameterError
from dynamo_gateway.client import GatewayClient
from dynamo_gateway.v1 import options_pb2, service_pb2
from tests.support.builders import item_map, py


async def test_batch_write_of_more_than_25_items_across_tables(
    client: GatewayClient, table: str, hash_table: str
) -> None:
    orders = [{"pk": "user#1", "sk": f"order#{i:03d}", "n": i} for i in range(60)]
    tags = [{"pk": f"tag#{i}"} for i in range(40)]
    result = await client.batch_write(puts={table: orders, hash_table: tags})
    assert not result.unprocessed_puts
    stored = [i async for i in client.query(table, "pk = :p", values={":p": "user#1"})]
    assert stored == orders
    assert len([i async for i in client.scan(hash_table)]) == 40
    await client.batch_write(deletes={table: [{"pk": o["pk"], "sk": o["sk"]} for o in orders[:30]]})
    assert [i async for i in client.query(table, "pk = :p", values={":p": "user#1"})] == orders[30:]


async def test_batch_get_of_more_than_100_keys(stub, client: GatewayClient, hash_table: str) -> None:
    for start in range(0, 250, 50):
        await client.batch_write(
            puts={hash_table: [{"pk": f"k{i}", "v": i} for i in range(start, start + 50)]}
        )
    request = service_pb2.BatchGetItemRequest(
        return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_TOTAL
    )
    keys = request.request_items[hash_table]
    for i in range(250):
        item_map(keys.keys.add().attributes, {"pk": f"k{i}"})
    keys.projection_expression = "v"
    response = await stub.BatchGetItem(request)
    assert sorted(py(i)["v"] for i in response.responses[hash_table].items) == list(range(250))
    assert not response.unprocessed_entries
    # One consumed-capacity entry per table, summed over the three DynamoDB calls.
    assert [c.table_name for c in response.consumed_capacity] == [hash_table]
    assert response.consumed_capacity[0].capacity_units > 0


async def test_duplicate_keys_in_a_batch_name_both_entries(stub, table: str) -> None:
    request = service_pb2.BatchWriteItemRequest()
    writes = request.request_items[table].requests
    item_map(writes.add().put_request.item, {"pk": "a", "sk": "1", "v": 1})
    item_map(writes.add().put_request.item, {"pk": "a", "sk": "2"})
    item_map(writes.add().delete_request.key, {"pk": "a", "sk": "1"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.BatchWriteItem(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"request_items[{table}].requests[2]" in caught.value.details()
    assert "requests[0]" in caught.value.details()


async def test_more_than_the_gateway_limit_is_refused(client: GatewayClient, hash_table: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        await client.batch_get({hash_table: [{"pk": f"k{i}"} for i in range(1001)]})
    assert "1001 keys" in caught.value.message
    assert caught.value.field_violations[0][0] == "request_items"
