"""Metrics: exact values on the real /metrics port after a scripted workload."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from dynamo_gateway import GatewayClient, GatewayError, TransactPut
from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.observability.telemetry import Telemetry
from tests.support.backends import no_sleep

from .conftest import settle, value

OK, CCF, THROTTLE = "ok", "ConditionalCheckFailedException", "ProvisionedThroughputExceededException"


async def test_a_scripted_workload_counts_exactly(observe, table_factory, proxy) -> None:
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    for number in range(3):
        await client.put_item(table, {"pk": "a", "sk": str(number)})
    assert await client.get_item(table, {"pk": "a", "sk": "0"})
    assert await client.get_item(table, {"pk": "nobody", "sk": "0"}) is None
    with pytest.raises(GatewayError):
        await client.put_item(table, {"pk": "a", "sk": "0"}, condition="attribute_not_exists(pk)")
    page = await client.query_page(table, "pk = :p", values={":p": "a"})
    assert len(page.items) == 3
    throttled_before = proxy.requests[("GetItem", "throttled-metrics")]
    for failing in ("throttled-metrics", "denied-metrics", "missing-metrics"):
        with pytest.raises(GatewayError):
            await client.get_item(failing, {"pk": "a"})
    assert proxy.requests[("GetItem", "throttled-metrics")] - throttled_before == 3  # what DynamoDB saw
    await settle()

    m = await observed.scrape()
    assert value(m, "dynamodb_operations_total", operation="PutItem", table=table, status="ok") == 3
    assert (
        value(m, "dynamodb_operations_total", operation="PutItem", table=table, status="condition_failed")
        == 1
    )
    assert value(m, "dynamodb_operations_total", operation="GetItem", table=table, status="ok") == 2
    assert value(m, "dynamodb_operations_total", operation="Query", table=table, status="ok") == 1
    assert (
        value(
            m, "dynamodb_operations_total", operation="GetItem", table="throttled-metrics", status="throttled"
        )
        == 1
    )
    assert (
        value(
            m, "dynamodb_operations_total", operation="GetItem", table="denied-metrics", status="auth_error"
        )
        == 1
    )
    assert (
        value(
            m,
            "dynamodb_operations_total",
            operation="GetItem",
            table="missing-metrics",
            status="client_error",
        )
        == 1
    )
    assert value(m, "dynamodb_operation_duration_seconds_count", operation="PutItem", table=table) == 4
    # moto reports constant capacity: 1 unit per PutItem, 0.5 per eventually consistent GetItem.
    assert value(m, "dynamodb_consumed_capacity_total", table=table, operation="PutItem") == 3.0
    assert value(m, "dynamodb_consumed_capacity_total", table=table, operation="GetItem") == 1.0
    assert value(m, "dynamodb_items_returned_count", operation="GetItem", table=table) == 2
    assert value(m, "dynamodb_items_returned_sum", operation="GetItem", table=table) == 1
    assert value(m, "dynamodb_items_returned_sum", operation="Query", table=table) == 3
    # Three attempts were throttled: two retried (seen by the resilience observer), one final.
    assert value(m, "dynamodb_throttles_total", table="throttled-metrics", operation="GetItem") == 3
    assert (
        value(
            m, "dynamodb_retries_total", operation="GetItem", table="throttled-metrics", error_type=THROTTLE
        )
        == 2
    )
    assert value(m, "dynamodb_conditional_check_failures", table=table, operation="PutItem") == 1
    assert value(m, "dynamodb_errors_total", error_type=CCF, table=table) == 1
    assert value(m, "dynamodb_errors_total", error_type=THROTTLE, table="throttled-metrics") == 1
    assert value(m, "dynamodb_errors_total", error_type="AccessDeniedException", table="denied-metrics") == 1
    assert (
        value(m, "dynamodb_errors_total", error_type="ResourceNotFoundException", table="missing-metrics")
        == 1
    )

    rpc = {"grpc_service": "dynamo_gateway.v1.DynamoDBService", "grpc_type": "unary"}
    assert value(m, "grpc_server_started_total", grpc_method="GetItem", **rpc) == 5
    assert value(m, "grpc_server_handled_total", grpc_method="GetItem", grpc_code="OK", **rpc) == 2
    assert (
        value(m, "grpc_server_handled_total", grpc_method="GetItem", grpc_code="RESOURCE_EXHAUSTED", **rpc)
        == 1
    )
    assert (
        value(m, "grpc_server_handled_total", grpc_method="GetItem", grpc_code="PERMISSION_DENIED", **rpc)
        == 1
    )
    assert value(m, "grpc_server_handled_total", grpc_method="GetItem", grpc_code="NOT_FOUND", **rpc) == 1
    assert (
        value(m, "grpc_server_handled_total", grpc_method="PutItem", grpc_code="FAILED_PRECONDITION", **rpc)
        == 1
    )
    assert value(m, "grpc_server_in_flight_requests", grpc_method="GetItem", **rpc) == 0
    assert value(m, "grpc_server_msg_received_total", grpc_method="PutItem", **rpc) == 4
    assert (
        value(m, "grpc_server_msg_sent_total", grpc_method="PutItem", **rpc) == 3
    )  # failures send no message


async def test_parallel_scan_counts_stream_messages(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    for number in range(4):
        await client.put_item(table, {"pk": f"p{number}", "sk": "x"})
    pages = [page async for page in client.parallel_scan(table, total_segments=4)]
    await settle()
    m = await observed.scrape()
    stream = {
        "grpc_service": "dynamo_gateway.v1.DynamoDBService",
        "grpc_method": "ParallelScan",
        "grpc_type": "server_stream",
    }
    assert value(m, "grpc_server_msg_sent_total", **stream) == len(pages)
    assert value(m, "grpc_server_handled_total", grpc_code="OK", **stream) == 1
    assert value(m, "dynamodb_operations_total", operation="Scan", table=table, status="ok") == len(pages)
    assert value(m, "dynamodb_items_returned_sum", operation="Scan", table=table) == 4


async def test_capacity_is_counted_but_only_returned_when_asked(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    stub = service_pb2_grpc.DynamoDBServiceStub(observed.channel)
    key = {"pk": {"s": "a"}, "sk": {"s": "b"}}
    plain = await stub.GetItem(service_pb2.GetItemRequest(table_name=table, key=key))
    asked = await stub.GetItem(
        service_pb2.GetItemRequest(table_name=table, key=key, return_consumed_capacity=2)  # TOTAL
    )
    unasked = await stub.GetItem(
        service_pb2.GetItemRequest(table_name=table, key=key, return_consumed_capacity=1)  # NONE
    )
    assert not plain.HasField("consumed_capacity")
    assert not unasked.HasField("consumed_capacity")
    assert asked.consumed_capacity.capacity_units == 0.5
    m = await observed.scrape()
    assert value(m, "dynamodb_consumed_capacity_total", table=table, operation="GetItem") == 1.5


async def test_an_open_breaker_is_a_metric_and_a_span_event(observe) -> None:
    observed = await observe(breaker_failure_threshold=1, retry_throughput_attempts=1)
    client = GatewayClient(observed.channel)
    with pytest.raises(GatewayError):
        await client.get_item("throttled-breaker", {"pk": "a"})
    with pytest.raises(GatewayError):
        await client.get_item("throttled-breaker", {"pk": "a"})  # fails fast: the breaker is open
    await settle()
    m = await observed.scrape()
    endpoint = observed.gateway.settings.endpoint_url
    assert value(m, "dynamodb_circuit_breaker_state", endpoint=endpoint, state="open") == 1
    assert value(m, "dynamodb_circuit_breaker_state", endpoint=endpoint, state="closed") == 0
    assert value(m, "dynamodb_throttles_total", table="throttled-breaker", operation="GetItem") == 1
    assert (
        value(
            m,
            "dynamodb_operations_total",
            operation="GetItem",
            table="throttled-breaker",
            status="server_error",
        )
        == 1
    )
    events = [event for span in observed.spans() for event in span.events if event.name == "circuit_breaker"]
    assert [event.attributes["state"] for event in events] == ["open"]


# ---------------------------------------------------------------- what no emulator produces


class ScriptedBackend:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        answer = self.answers[operation]
        if isinstance(answer, list):  # answers in turn; the last one repeats
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        pass


@pytest.fixture
async def scripted():
    gateways: list[Gateway] = []

    async def start(answers: dict[str, Any]) -> tuple[Gateway, ScriptedBackend]:
        settings = Settings(port=0, metrics_port=0, backend="aws")
        telemetry = Telemetry(settings)
        backend = ScriptedBackend(answers)
        gateway = Gateway(settings, backend, telemetry=telemetry, clocks=Clocks(sleep=no_sleep))
        await gateway.start()
        gateways.append(gateway)
        return gateway, backend

    yield start
    for gateway in gateways:
        await gateway.stop(0)


async def _scrape(gateway: Gateway) -> dict:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{gateway.telemetry.metrics_port}/metrics") as response:
            text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_unprocessed_items_and_cancelled_conditions_are_counted(scripted) -> None:
    cancelled = BackendError(
        "TransactionCanceledException",
        "Transaction cancelled",
        cancellation_reasons=[
            {"Code": "None"},
            {"Code": "ConditionalCheckFailed"},
            {"Code": "ConditionalCheckFailed"},
        ],
    )
    gateway, backend = await scripted(
        {
            "BatchWriteItem": [
                {
                    "UnprocessedItems": {
                        "tab1": [
                            {"PutRequest": {"Item": {"pk": {"S": "x"}}}},
                            {"PutRequest": {"Item": {"pk": {"S": "y"}}}},
                        ]
                    },
                    "ConsumedCapacity": [
                        {"TableName": "tab1", "CapacityUnits": 3.0},
                        {"TableName": "tab2", "CapacityUnits": 1.0},
                    ],
                },
                # The gateway sends the leftovers again (batches.py); this time DynamoDB takes them.
                {"ConsumedCapacity": [{"TableName": "tab1", "CapacityUnits": 2.0}]},
            ],
            "TransactWriteItems": cancelled,
            # Batches look up each table's key schema first (batches.py).
            "DescribeTable": {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
        }
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        client = GatewayClient(channel)
        result = await client.batch_write(
            {"tab1": [{"pk": "x"}, {"pk": "y"}, {"pk": "z"}], "tab2": [{"pk": "w"}]}
        )
        assert not result.unprocessed_puts
        with pytest.raises(GatewayError):
            await client.transact_write(
                [
                    TransactPut("tab1", {"pk": "a"}),
                    TransactPut("tab2", {"pk": "b"}),
                    TransactPut("tab2", {"pk": "c"}),
                ]
            )
    batch_calls = [params for operation, params in backend.calls if operation == "BatchWriteItem"]
    assert len(batch_calls) == 2
    assert {params["ReturnConsumedCapacity"] for params in batch_calls} == {"TOTAL"}  # on the caller's behalf
    m = await _scrape(gateway)
    # Counted per DynamoDB call: what DynamoDB left over, even though the gateway then sent it again.
    assert value(m, "dynamodb_batch_unprocessed_items", table="tab1", operation="BatchWriteItem") == 2
    assert value(m, "dynamodb_batch_unprocessed_items", table="tab2", operation="BatchWriteItem") == 0
    assert value(m, "dynamodb_consumed_capacity_total", table="tab1", operation="BatchWriteItem") == 5.0
    assert value(m, "dynamodb_consumed_capacity_total", table="tab2", operation="BatchWriteItem") == 1.0
    assert value(m, "dynamodb_conditional_check_failures", table="tab2", operation="TransactWriteItems") == 2
    assert value(m, "dynamodb_conditional_check_failures", table="tab1", operation="TransactWriteItems") == 0
    assert value(m, "dynamodb_operations_total", operation="BatchWriteItem", table="tab1", status="ok") == 2
    assert value(m, "dynamodb_operations_total", operation="BatchWriteItem", table="tab2", status="ok") == 1


async def test_capacity_is_requested_for_every_operation_that_supports_it(scripted) -> None:
    answers = {
        name: {"ConsumedCapacity": {"TableName": "tab", "CapacityUnits": 1.0}}
        for name in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    }
    answers |= {
        name: {"Items": [], "Count": 0, "ConsumedCapacity": {"TableName": "tab", "CapacityUnits": 1.0}}
        for name in ("Query", "Scan")
    }
    answers |= {
        "BatchGetItem": {"Responses": {}, "ConsumedCapacity": []},
        "TransactGetItems": {"Responses": [{}]},
    }
    answers |= {
        "DescribeTable": {
            "Table": {"TableName": "tab", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
        }
    }
    answers |= {"DescribeTimeToLive": {}}
    gateway, backend = await scripted(answers)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        client = GatewayClient(channel)
        key = {"pk": "a"}
        assert await client.get_item("tab", key) is None
        await client.put_item("tab", key)
        await client.update_item("tab", key, "SET v = :v", values={":v": 1})
        await client.delete_item("tab", key)
        await client.query_page("tab", "pk = :p", values={":p": "a"})
        await client.scan_page("tab")
        await client.batch_get({"tab": [key]})
        await client.transact_get([("tab", key)])
        await client.describe_table("tab")
    sent = {operation: params.get("ReturnConsumedCapacity") for operation, params in backend.calls}
    supported = (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "TransactGetItems",
    )
    assert {name: sent[name] for name in supported} == dict.fromkeys(supported, "TOTAL")
    assert sent["DescribeTable"] is None  # DescribeTable takes no such parameter
    m = await _scrape(gateway)
    assert value(m, "dynamodb_consumed_capacity_total", table="tab", operation="Query") == 1.0


async def test_capacity_counts_under_the_table_dynamodb_names_in_its_answer(scripted) -> None:
    # One-table calls take a shortcut to their series; the answer's table still decides.
    answer = {"Item": {"pk": {"S": "a"}}, "ConsumedCapacity": {"TableName": "other", "CapacityUnits": 0.5}}
    gateway, _ = await scripted({"GetItem": answer})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        client = GatewayClient(channel)
        for _ in range(2):
            assert await client.get_item("tab", {"pk": "a"}) == {"pk": "a"}
    m = await _scrape(gateway)
    assert value(m, "dynamodb_consumed_capacity_total", table="other", operation="GetItem") == 1.0
    assert value(m, "dynamodb_operations_total", operation="GetItem", table="tab", status="ok") == 2
    assert value(m, "dynamodb_items_returned_sum", operation="GetItem", table="tab") == 2


async def test_the_event_loop_tasks_gauge_counts_the_serving_loops_tasks(scripted) -> None:
    gateway, _ = await scripted({})
    # The loop is the session's, shared with other tests' leftovers: many sleepers stand out.
    before = value(await _scrape(gateway), "dynamo_gateway_event_loop_tasks")
    sleepers = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(50)]
    try:
        assert value(await _scrape(gateway), "dynamo_gateway_event_loop_tasks") >= before + 50
    finally:
        for sleeper in sleepers:
            sleeper.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
    assert value(await _scrape(gateway), "dynamo_gateway_event_loop_tasks") < before + 50
