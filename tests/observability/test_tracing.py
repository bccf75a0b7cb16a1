"""Spans: one per DynamoDB call, named and attributed as the spec says, children of the RPC's span."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.trace import StatusCode

from dynamo_gateway import GatewayClient, GatewayError, TransactPut, TransactUpdate
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.observability.keys import KeyRenderer

from .conftest import settle

HASH = KeyRenderer("hashed").hash


def _spec_attributes(span) -> dict:
    return {name: value for name, value in span.attributes.items() if name.startswith("dynamodb.")}


async def test_every_operation_has_its_span_with_the_spec_attributes(observe, table_factory) -> None:
    observed = await observe()
    table, other = await table_factory(), await table_factory()
    client = GatewayClient(observed.channel)
    # The first success on a table teaches the gateway its key schema (for pk/sk attributes).
    await client.put_item(table, {"pk": "seed", "sk": "0"})
    await client.put_item(other, {"pk": "seed", "sk": "0"})
    observed.exporter.clear()

    await client.put_item(table, {"pk": "a", "sk": "1", "n": 1}, condition="attribute_not_exists(pk)")
    await client.get_item(table, {"pk": "a", "sk": "1"}, consistent_read=True)
    await client.update_item(table, {"pk": "a", "sk": "1"}, "SET n = n + :one", values={":one": 1})
    await client.query_page(table, "pk = :p", values={":p": "a"}, page_size=5)
    await client.scan_page(table, segment=1, total_segments=2)
    await client.batch_get({table: [{"pk": "a", "sk": "1"}, {"pk": "seed", "sk": "0"}]})
    await client.batch_write(
        {table: [{"pk": "b", "sk": "1"}, {"pk": "c", "sk": "1"}]}, deletes={table: [{"pk": "a", "sk": "1"}]}
    )
    await client.transact_write(
        [
            TransactPut(other, {"pk": "t", "sk": "1"}),
            TransactUpdate(table, {"pk": "b", "sk": "1"}, "SET x = :x", values={":x": 1}),
        ]
    )
    await client.transact_get([(table, {"pk": "b", "sk": "1"}), (other, {"pk": "t", "sk": "1"})])
    await client.delete_item(table, {"pk": "b", "sk": "1"})
    await settle()

    a, b = HASH({"S": "a"}), HASH({"S": "b"})
    expected = [
        (
            "dynamodb.put_item",
            {"table": table, "pk": a, "sk": HASH({"S": "1"}), "condition": "attribute_not_exists(pk)"},
        ),
        ("dynamodb.get_item", {"table": table, "pk": a, "sk": HASH({"S": "1"}), "consistent_read": True}),
        (
            "dynamodb.update_item",
            {"table": table, "pk": a, "sk": HASH({"S": "1"}), "update_expr": "SET n = n + :one"},
        ),
        ("dynamodb.query", {"table": table, "index": "", "pk": a, "limit": 5}),
        ("dynamodb.scan", {"table": table, "segment": 1, "total_segments": 2}),
        ("dynamodb.batch_get", {"table": table, "item_count": 2}),
        ("dynamodb.batch_write", {"table": table, "put_count": 2, "delete_count": 1}),
        ("dynamodb.transact_write", {"item_count": 2, "tables": tuple(sorted([table, other]))}),
        ("dynamodb.transact_get", {"item_count": 2, "tables": tuple(sorted([table, other]))}),
        ("dynamodb.delete_item", {"table": table, "pk": b, "sk": HASH({"S": "1"})}),
    ]
    # Batches look up key schemas with DescribeTable themselves (batches.py); those spans are not the caller's.
    spans = [span for span in observed.spans() if span.name != "dynamodb.describe_table"]
    assert [span.name for span in spans] == [name for name, _ in expected]
    for span, (name, attributes) in zip(spans, expected, strict=True):
        actual = _spec_attributes(span)
        for attribute, wanted in attributes.items():
            assert actual[f"dynamodb.{attribute}"] == wanted, (name, attribute)
        # Asked for although the caller did not; moto reports none for transactions (DynamoDB does).
        assert actual["dynamodb.consumed_capacity"] >= (0 if "transact" in name else 0.5), name
        assert span.status.status_code is StatusCode.UNSET

    servers = {
        span.context.span_id: span for span in observed.spans(prefix="/dynamo_gateway.v1.DynamoDBService/")
    }
    for span in spans:
        parent = servers[span.parent.span_id]  # every DynamoDB span is a child of its RPC's span
        assert parent.context.trace_id == span.context.trace_id
    assert servers[spans[1].parent.span_id].name.endswith("/GetItem")


async def test_key_values_can_be_plain_or_left_out(observe, table_factory) -> None:
    table = await table_factory()
    for mode, expected in (("plain", {"dynamodb.pk": "user#1", "dynamodb.sk": "x"}), ("off", {})):
        observed = await observe(trace_key_values=mode)
        client = GatewayClient(observed.channel)
        await client.put_item(table, {"pk": "user#1", "sk": "x"})
        await client.get_item(table, {"pk": "user#1", "sk": "x"})
        await settle()
        get = observed.spans()[-1]
        assert get.name == "dynamodb.get_item"
        keys = {
            name: value for name, value in get.attributes.items() if name in ("dynamodb.pk", "dynamodb.sk")
        }
        assert keys == expected, mode


async def test_hashed_keys_do_not_show_the_key(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    await client.put_item(table, {"pk": "alice@example.com", "sk": "x"})
    await client.get_item(table, {"pk": "alice@example.com", "sk": "x"})
    await settle()
    attributes = observed.spans()[-1].attributes
    assert attributes["dynamodb.pk"] == HASH({"S": "alice@example.com"})
    assert "alice" not in str(dict(attributes))


async def test_the_callers_trace_context_is_continued(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    metadata = (("traceparent", f"00-{trace_id}-{parent_id}-01"),)
    await GatewayClient(observed.channel).stub.GetItem(
        service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "a"}, "sk": {"s": "b"}}),
        metadata=metadata,
    )
    await settle()
    server = observed.spans(prefix="/dynamo_gateway")[-1]
    assert format(server.context.trace_id, "032x") == trace_id
    assert format(server.parent.span_id, "016x") == parent_id
    assert format(observed.spans()[-1].context.trace_id, "032x") == trace_id


async def test_retries_are_events_on_the_calls_span(observe) -> None:
    observed = await observe()
    with pytest.raises(GatewayError):
        await GatewayClient(observed.channel).get_item("throttled-orders", {"pk": "a"})
    await settle()
    (span,) = observed.spans()
    assert span.name == "dynamodb.get_item"
    retries = [event for event in span.events if event.name == "retry"]
    assert [event.attributes["attempt"] for event in retries] == [1, 2]  # 3 attempts, 2 retries
    assert {event.attributes["error_code"] for event in retries} == {"ProvisionedThroughputExceededException"}
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["dynamodb.error_code"] == "ProvisionedThroughputExceededException"


async def test_parallel_scan_streams_under_tracing_with_a_span_per_page(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    for number in range(6):
        await client.put_item(table, {"pk": f"p{number}", "sk": "x"})
    observed.exporter.clear()
    pages = [page async for page in client.parallel_scan(table, total_segments=3)]
    await settle()
    assert sum(len(page.items) for page in pages) == 6
    scans = observed.spans()
    assert sorted(span.attributes["dynamodb.segment"] for span in scans) == [0, 1, 2]
    assert {span.attributes["dynamodb.total_segments"] for span in scans} == {3}
    (server,) = observed.spans(prefix="/dynamo_gateway")
    assert server.name.endswith("/ParallelScan")
    assert {span.parent.span_id for span in scans} == {server.context.span_id}
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
