"""Input limits at their boundaries: exactly at the limit passes, one byte (or one more) fails.

Refusals come before DynamoDB: the recorder behind the gateway shows the request
never left. The item size rule is checked against dynalite, which sizes items as
DynamoDB does (moto stops at 405,000 bytes of its own count); the rest against moto.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dynamo_gateway.v1 import service_pb2, value_pb2
from dynamo_gateway_server.backends.base import BackendError
from dynamo_gateway_server.input_rules import (
    MAX_EXPRESSION_BYTES,
    MAX_ITEM_BYTES,
    MAX_NESTING_DEPTH,
    MAX_PARTITION_KEY_BYTES,
    MAX_PLACEHOLDER_BYTES,
    MAX_SORT_KEY_BYTES,
    MAX_TRANSACTION_ITEMS,
    _item_size_at_most,
    item_size,
    number_size,
)
from dynamo_gateway_server.security.limits import InFlightLimiter

from .conftest import aws_backend, bearer, create_table, details, fill, key, put, s, write_tokens


def _refusal(error: grpc.aio.AioRpcError) -> tuple[str, str, str]:
    found = details(error)
    violation = found["BadRequest"].field_violations[0] if "BadRequest" in found else None
    return error.code().name, found["info"].reason, violation.field if violation else ""


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


# ---------------------------------------------------------------- item size


def _item_of_size(size: int) -> dict[str, Any]:
    """An item DynamoDB sizes at exactly `size` bytes, with every kind of value in it (ASCII text)."""
    item: dict[str, Any] = {
        "pk": {"S": "a"},
        "sk": {"S": "0"},
        "n": {"N": "-12.345"},
        "doc": {"M": {"x": {"N": "100"}, "l": {"L": [{"BOOL": True}, {"NULL": True}, {"S": "abc"}]}}},
        "set": {"NS": ["1", "22", "333.5"]},
        "bin": {"B": b"\x00\x01\x02"},
        "data": {"S": ""},
    }
    item["data"]["S"] = "x" * (size - item_size(item))
    assert item_size(item) == size
    return item


def _to_proto(item: dict[str, Any]) -> dict[str, value_pb2.AttributeValue]:
    from dynamo_gateway_server import codec

    target = service_pb2.PutItemRequest().item
    codec.fill_item(target, item)
    return dict(target)


def test_numbers_are_sized_as_dynamodb_stores_them() -> None:
    # Base-100 digit pairs, an exponent byte, one more for a negative number (dynalite's model of DynamoDB).
    assert [
        number_size(n) for n in ("0", "1", "12", "123", "1.2", "-1", "100", "0.001", "12345678901234567890")
    ] == [
        1,
        2,
        2,
        3,
        3,
        3,
        2,
        2,
        11,
    ]


async def test_an_item_of_exactly_400_kb_passes_and_one_byte_more_does_not(serve, dynalite) -> None:
    direct = await aws_backend(dynalite.endpoint_url)
    try:
        table = await create_table(direct, "size")
        served = await serve(endpoint_url=dynalite.endpoint_url)
        stub = served.stub()
        at_limit = _item_of_size(MAX_ITEM_BYTES)
        await stub.PutItem(service_pb2.PutItemRequest(table_name=table, item=_to_proto(at_limit)))
        over = _item_of_size(MAX_ITEM_BYTES + 1)
        refused = await _refused(
            stub.PutItem(service_pb2.PutItemRequest(table_name=table, item=_to_proto(over)))
        )
        assert _refusal(refused) == ("INVALID_ARGUMENT", "Item.ItemTooLarge", "item")
        assert "409601 bytes" in refused.details()
        batch = service_pb2.BatchWriteItemRequest()
        target = batch.request_items[table].requests.add().put_request.item
        for name, value in _to_proto(over).items():
            target[name].CopyFrom(value)
        refused = await _refused(stub.BatchWriteItem(batch))
        assert _refusal(refused)[2] == f"request_items[{table}].requests[0].put_request.item"
        assert [op for op in served.recorder.touched(table) if op != "DescribeTable"] == ["PutItem"]
        # DynamoDB's own count agrees at the boundary: sent directly, dynalite refuses the same item.
        with pytest.raises(BackendError, match="Item size has exceeded"):
            await direct.call("PutItem", {"TableName": table, "Item": over})
    finally:
        await direct.close()


# ---------------------------------------------------------------- keys


async def test_key_sizes_at_their_limits(serve, admin) -> None:
    table = await create_table(admin, "keys")
    served = await serve()
    stub = served.stub()
    await stub.PutItem(put(table, "p" * MAX_PARTITION_KEY_BYTES, "s" * MAX_SORT_KEY_BYTES))
    got = await stub.GetItem(
        service_pb2.GetItemRequest(
            table_name=table, key=key("p" * MAX_PARTITION_KEY_BYTES, "s" * MAX_SORT_KEY_BYTES)
        )
    )
    assert got.found
    for pk, sk, field in (
        ("p" * (MAX_PARTITION_KEY_BYTES + 1), "s", "item.pk"),
        ("p", "s" * (MAX_SORT_KEY_BYTES + 1), "item.sk"),
    ):
        refused = await _refused(stub.PutItem(put(table, pk, sk)))
        assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidKey", field)
    refused = await _refused(
        stub.DeleteItem(
            service_pb2.DeleteItemRequest(table_name=table, key=key("p" * (MAX_PARTITION_KEY_BYTES + 1)))
        )
    )
    assert _refusal(refused)[2] == "key.pk"
    # A non-key attribute may be long: only the key attributes have these limits.
    await stub.PutItem(put(table, "p", "s", note="n" * (MAX_PARTITION_KEY_BYTES + 1)))
    assert [op for op in served.recorder.touched(table) if op != "DescribeTable"] == [
        "PutItem",
        "GetItem",
        "PutItem",
    ]


# ---------------------------------------------------------------- expressions and nesting


async def test_expression_and_placeholder_lengths_at_their_limits(serve, admin) -> None:
    table = await create_table(admin, "expr")
    stub = (await serve()).stub()
    condition = "attribute_not_exists(pk)"

    def padded(size: int) -> service_pb2.PutItemRequest:
        request = put(table, f"e{size}")
        request.condition_expression = condition + " " * (size - len(condition))
        return request

    await stub.PutItem(padded(MAX_EXPRESSION_BYTES))
    refused = await _refused(stub.PutItem(padded(MAX_EXPRESSION_BYTES + 1)))
    assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidExpression", "condition_expression")

    def named(size: int) -> service_pb2.PutItemRequest:
        placeholder = "#" + "n" * (size - 1)
        request = put(table, f"p{size}")
        request.condition_expression = f"attribute_not_exists({placeholder})"
        request.expression_attribute_names[placeholder] = "pk"
        return request

    await stub.PutItem(named(MAX_PLACEHOLDER_BYTES))
    refused = await _refused(stub.PutItem(named(MAX_PLACEHOLDER_BYTES + 1)))
    assert _refusal(refused) == (
        "INVALID_ARGUMENT",
        "Validation.InvalidExpression",
        "expression_attribute_names",
    )


def _nested(depth: int) -> value_pb2.AttributeValue:
    value = value_pb2.AttributeValue(s="leaf")
    for _ in range(depth):
        outer = value_pb2.AttributeValue()
        outer.l.values.add().CopyFrom(value)
        value = outer
    return value


async def test_nesting_depth_at_its_limit(serve, admin) -> None:
    table = await create_table(admin, "deep")
    served = await serve()
    stub = served.stub()
    request = put(table, "deep")
    request.item["doc"].CopyFrom(_nested(MAX_NESTING_DEPTH))
    await stub.PutItem(request)
    request.item["doc"].CopyFrom(_nested(MAX_NESTING_DEPTH + 1))
    refused = await _refused(stub.PutItem(request))
    assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidParameter", "item.doc")
    assert "33 levels" in refused.details()


async def test_a_message_protobuf_cannot_decode_is_invalid_argument_not_internal(serve) -> None:
    served = await serve()
    channel = served.channel()
    raw = channel.unary_unary("/dynamo_gateway.v1.DynamoDBService/PutItem")  # bytes in, bytes out
    refused = await _refused(raw(b"\xff\xff\xff\xff garbage"))
    assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidParameter", "request")
    deep_maps = value_pb2.AttributeValue(s="leaf")
    for _ in range(40):
        outer = value_pb2.AttributeValue()
        outer.m.fields["k"].CopyFrom(deep_maps)
        deep_maps = outer
    request = put("any-table", "a")
    request.item["doc"].CopyFrom(deep_maps)
    refused = await _refused(raw(request.SerializeToString()))
    assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidParameter", "request")
    assert "nests deeper" in refused.details()
    assert served.recorder.operations == []


# ---------------------------------------------------------------- counts


async def test_transaction_and_batch_counts_at_their_limits(serve, admin) -> None:
    table = await create_table(admin, "counts")
    served = await serve(batch_max_items=30)
    stub = served.stub()

    def transaction(count: int, prefix: str) -> service_pb2.TransactWriteItemsRequest:
        request = service_pb2.TransactWriteItemsRequest()
        for index in range(count):
            entry = request.transact_items.add()
            entry.put.table_name = table
            fill(entry.put.item, key(f"{prefix}{index}"))
        return request

    await stub.TransactWriteItems(transaction(MAX_TRANSACTION_ITEMS, "t"))
    refused = await _refused(stub.TransactWriteItems(transaction(MAX_TRANSACTION_ITEMS + 1, "u")))
    assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidParameter", "transact_items")
    assert [op for op in served.recorder.touched(table) if op != "DescribeTable"] == ["TransactWriteItems"]

    def batch(count: int, prefix: str) -> service_pb2.BatchWriteItemRequest:
        request = service_pb2.BatchWriteItemRequest()
        for index in range(count):
            fill(request.request_items[table].requests.add().put_request.item, key(f"{prefix}{index}"))
        return request

    response = await stub.BatchWriteItem(batch(30, "b"))
    assert not response.unprocessed_items
    refused = await _refused(stub.BatchWriteItem(batch(31, "c")))
    assert _refusal(refused) == ("INVALID_ARGUMENT", "Validation.InvalidParameter", "request_items")


# ---------------------------------------------------------------- message size


def _put_of_serialized_size(table: str, size: int) -> service_pb2.PutItemRequest:
    for padding in range(size, 0, -1):
        request = put(table, "big", data="x" * padding)
        if request.ByteSize() == size:
            return request
    raise AssertionError(f"no PutItemRequest of {size} bytes")


async def test_request_size_at_its_limit(serve, admin) -> None:
    table = await create_table(admin, "bytes")
    served = await serve(max_request_bytes=4096)
    stub = served.stub()
    await stub.PutItem(_put_of_serialized_size(table, 4096))
    refused = await _refused(stub.PutItem(_put_of_serialized_size(table, 4097)))
    assert _refusal(refused) == ("RESOURCE_EXHAUSTED", "Caller.RequestTooLarge", "")
    assert details(refused)["info"].metadata["limit_bytes"] == "4096"
    # Far over the limit, gRPC itself refuses before the gateway sees the message (no details then).
    huge = put(table, "huge", data="x" * (2 * 1024 * 1024))
    with pytest.raises(grpc.aio.AioRpcError) as refused_by_grpc:
        await stub.PutItem(huge)
    assert refused_by_grpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # (The long value made the gateway learn the key schema, to check the key sizes.)
    assert [op for op in served.recorder.touched(table) if op != "DescribeTable"] == ["PutItem"]


# ---------------------------------------------------------------- RPCs in flight


class Gate:
    """Holds every DynamoDB call until opened; tells when `expected` calls are waiting at it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opened = asyncio.Event()
        self.waiting = 0
        self.expected = 0
        self.reached = asyncio.Event()

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.waiting += 1
        if self.waiting >= self.expected:
            self.reached.set()
        await self.opened.wait()
        return await self.inner.call(operation, params)

    async def close(self) -> None:
        await self.inner.close()


async def test_the_server_wide_limit_refuses_at_once_and_health_still_answers(serve, admin) -> None:
    table = await create_table(admin, "busy")
    gates: list[Gate] = []
    served = await serve(max_inflight_rpcs=2, wrap=lambda backend: gates.append(Gate(backend)) or gates[-1])
    gate = gates[0]
    gate.expected = 2
    stub = served.stub()
    request = service_pb2.GetItemRequest(table_name=table, key=key("a"))
    held = [asyncio.ensure_future(stub.GetItem(request)) for _ in range(2)]
    await gate.reached.wait()
    refused = await _refused(stub.GetItem(request))
    assert _refusal(refused) == ("RESOURCE_EXHAUSTED", "Caller.ConcurrencyLimitExceeded", "")
    found = details(refused)
    assert found["info"].metadata["scope"] == "server" and "RetryInfo" in found
    health = await health_pb2_grpc.HealthStub(served.channel()).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    gate.opened.set()
    await asyncio.gather(*held)
    await stub.GetItem(request)  # the slots are free again
    assert served.gateway.security.limiter.total == 0


async def test_the_per_caller_limit_leaves_room_for_other_callers(serve, admin, tmp_path) -> None:
    table = await create_table(admin, "fair")
    first, second = "dgw_first_0123456789abcdef0123456789ab", "dgw_second_0123456789abcdef0123456789a"
    tokens = write_tokens(tmp_path / "tokens.yaml", {"first": first, "second": second})
    gates: list[Gate] = []
    served = await serve(
        auth_tokens_file=str(tokens),
        max_inflight_rpcs_per_caller=1,
        wrap=lambda backend: gates.append(Gate(backend)) or gates[-1],
    )
    gate = gates[0]
    stub = served.stub()
    request = service_pb2.GetItemRequest(table_name=table, key=key("a"))
    gate.expected = 1
    held = [asyncio.ensure_future(stub.GetItem(request, metadata=bearer(first)))]
    await gate.reached.wait()
    refused = await _refused(stub.GetItem(request, metadata=bearer(first)))
    assert _refusal(refused) == ("RESOURCE_EXHAUSTED", "Caller.ConcurrencyLimitExceeded", "")
    assert details(refused)["info"].metadata["scope"] == "caller"
    gate.reached.clear()
    gate.expected = 2
    held.append(asyncio.ensure_future(stub.GetItem(request, metadata=bearer(second))))
    await gate.reached.wait()  # the other caller got in while the first one is at its limit
    gate.opened.set()
    await asyncio.gather(*held)
    await stub.GetItem(request, metadata=bearer(first))


def test_the_limiter_counts_and_forgets_callers() -> None:
    limiter = InFlightLimiter(max_total=3, max_per_caller=2)
    assert [limiter.enter("a"), limiter.enter("a"), limiter.enter("a")] == [None, None, "caller"]
    assert [limiter.enter("b"), limiter.enter("c")] == [None, "server"]
    for caller in ("a", "a", "b"):
        limiter.leave(caller)
    assert limiter.total == 0 and limiter.in_flight("a") == 0 and not limiter._per_caller


@pytest.mark.parametrize(
    "item",
    [
        {"a": {"S": "x"}},
        {"é€😀": {"S": "ü€😀\ud800"}},  # 2-, 3- and 4-byte characters and a lone surrogate
        {
            f"n{i}": {"N": n}
            for i, n in enumerate(("0", "-1", "12", "0.001", "-12.345E-10", "9" * 38, "1" + "0" * 37))
        },
        {"n": {"N": "-0.00000000000000000000000000000000001"}},
        {"doc": _item_of_size(1000)["doc"], "set": {"SS": ["€", "b"]}, "bin": {"B": b"\x00"}},
        _item_of_size(2000),
    ],
)
def test_the_quick_size_bound_never_undercounts(item: dict[str, Any]) -> None:
    # The check skips exact sizing when the bound is within the limit, so it must never be below it.
    assert _item_size_at_most(item) >= item_size(item)


def test_text_is_counted_in_utf8_bytes() -> None:
    assert item_size({"é": {"S": "ü€"}}) == 2 + 5
    assert item_size({"m": {"M": {}}, "l": {"L": []}}) == (1 + 3) + (1 + 3)
    assert s("x") == {"s": "x"}
