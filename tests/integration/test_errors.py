"""Every error mapping, provoked for real: by the emulators, or by the fault proxy in front of them."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dynamo_gateway import (
    BackendUnavailableError,
    ConditionalCheckFailedError,
    GatewayClient,
    InvalidRequestError,
    PermissionDeniedError,
    TableNotFoundError,
    ThrottledError,
    TransactConditionCheck,
    TransactionCanceledError,
    TransactPut,
)
from dynamo_gateway.v1 import options_pb2, service_pb2
from dynamo_gateway_server.app import Gateway
from dynamo_gateway_server.backends.aws import AwsBackend, AwsBackendOptions
from dynamo_gateway_server.backends.memory import free_loopback_port
from dynamo_gateway_server.config import Settings

from tests.support.builders import item_map, status_details


def _error_info(error: grpc.aio.AioRpcError):
    return status_details(error)["google.rpc.ErrorInfo"]


async def _rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_dynamodb_validation_is_invalid_argument(stub, client: GatewayClient, table: str) -> None:
    request = service_pb2.GetItemRequest(table_name=table)
    item_map(request.key, {"pk": "only the partition key"})
    error = await _rpc_error(stub.GetItem(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _error_info(error).reason == "ValidationException"
    assert _error_info(error).domain == "dynamo-gateway"
    with pytest.raises(InvalidRequestError) as caught:
        await client.put_item(table, {"pk": "x", "sk": "y"}, condition="this is not an expression")
    assert caught.value.reason == "ValidationException"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda t: service_pb2.PutItemRequest(table_name=t, item={"pk": {"n": "12abc"}}), "item.pk"),
        (
            lambda t: service_pb2.PutItemRequest(table_name=t, item={"pk": {"s": "a"}, "e": {"ss": {}}}),
            "item.e",
        ),
        (lambda t: service_pb2.GetItemRequest(table_name=t), "key"),
        (lambda t: service_pb2.GetItemRequest(key={"pk": {"s": "a"}}), "table_name"),
        (
            lambda t: service_pb2.PutItemRequest(table_name=t, item={"pk": {"s": "a"}}, return_values=99),
            "return_values",
        ),
        (
            lambda t: service_pb2.QueryRequest(table_name=t, key_condition_expression="pk = :p", limit=-1),
            "limit",
        ),
        (lambda t: service_pb2.ScanRequest(table_name=t, segment=3, total_segments=2), "segment"),
    ],
)
async def test_our_validation_names_the_field(stub, table: str, build, field: str) -> None:
    request = build(table)
    method = getattr(stub, type(request).__name__.removesuffix("Request"))
    error = await _rpc_error(method(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()
    details = status_details(error)
    assert details["google.rpc.ErrorInfo"].reason == "INVALID_REQUEST"
    assert [v.field for v in details["google.rpc.BadRequest"].field_violations] == [field]


async def test_conditional_check_failure_is_failed_precondition(
    stub, client: GatewayClient, table: str
) -> None:
    await client.put_item(table, {"pk": "p", "sk": "s", "v": 1})
    with pytest.raises(ConditionalCheckFailedError) as caught:
        await client.put_item(table, {"pk": "p", "sk": "s", "v": 2}, condition="attribute_not_exists(pk)")
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "ConditionalCheckFailedException"
    assert caught.value.item is None  # not asked for
    assert await client.get_item(table, {"pk": "p", "sk": "s"}) == {"pk": "p", "sk": "s", "v": 1}


async def test_failed_condition_returns_old_item_when_asked(
    emulator, client: GatewayClient, table: str
) -> None:
    if emulator.kind == "dynalite":
        pytest.skip("dynalite predates ReturnValuesOnConditionCheckFailure")
    await client.put_item(table, {"pk": "p", "sk": "s", "v": 1, "b": b"\x00"})
    with pytest.raises(ConditionalCheckFailedError) as caught:
        await client.update_item(
            table,
            {"pk": "p", "sk": "s"},
            "SET v = :two",
            condition="v = :zero",
            values={":two": 2, ":zero": 0},
            return_old_on_failure=True,
        )
    assert caught.value.item == {"pk": "p", "sk": "s", "v": 1, "b": b"\x00"}


async def test_missing_table_is_not_found(stub, client: GatewayClient) -> None:
    with pytest.raises(TableNotFoundError) as caught:
        await client.get_item("no-such-table", {"pk": "a"})
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "ResourceNotFoundException"
    assert caught.value.metadata["table"] == "no-such-table"
    with pytest.raises(TableNotFoundError):
        await client.describe_table("no-such-table")
    with pytest.raises(TableNotFoundError):
        [p async for p in client.parallel_scan("no-such-table", total_segments=2)]


@pytest.mark.transactions
async def test_transaction_cancellation_is_aborted_with_reasons(client: GatewayClient, table: str) -> None:
    await client.put_item(table, {"pk": "t", "sk": "taken", "owner": "someone"})
    with pytest.raises(TransactionCanceledError) as caught:
        await client.transact_write(
            [
                TransactPut(table, {"pk": "t", "sk": "new"}),
                TransactConditionCheck(
                    table, {"pk": "t", "sk": "taken"}, "attribute_not_exists(pk)", return_old_on_failure=True
                ),
            ]
        )
    error = caught.value
    assert error.code == grpc.StatusCode.ABORTED
    assert error.reason == "TransactionCanceledException"
    assert [r.code for r in error.reasons] == ["None", "ConditionalCheckFailed"]
    assert error.reasons[1].item == {"pk": "t", "sk": "taken", "owner": "someone"}
    assert await client.get_item(table, {"pk": "t", "sk": "new"}) is None  # nothing applied


async def test_throttling_is_resource_exhausted(client: GatewayClient, fault_proxy) -> None:
    before = fault_proxy.faults_served
    with pytest.raises(ThrottledError) as caught:
        await client.put_item("throttled-orders", {"pk": "a"})
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == "ProvisionedThroughputExceededException"
    assert fault_proxy.faults_served == before + 1  # the SDK's own retries are off here


async def test_dynamodb_5xx_is_unavailable(client: GatewayClient) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        await client.get_item("unavailable-orders", {"pk": "a"})
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == "ServiceUnavailable"


async def test_gateway_identity_denied_is_permission_denied(client: GatewayClient) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        await client.get_item("denied-orders", {"pk": "a"})
    assert caught.value.reason == "AccessDeniedException"


async def test_unreachable_backend_is_unavailable_not_internal() -> None:
    dead_port = free_loopback_port()  # nothing listens here
    backend = await AwsBackend.start(
        AwsBackendOptions(
            region="us-east-1",
            endpoint_url=f"http://127.0.0.1:{dead_port}",
            max_concurrency=4,
            connect_timeout_s=1,
            read_timeout_s=1,
            max_attempts=1,
            static_credentials=("test", "test"),
        )
    )
    gateway = Gateway(Settings(port=0, backend="aws"), backend)
    await gateway.start()
    try:
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}") as client:
            with pytest.raises(BackendUnavailableError) as caught:
                await client.get_item("t", {"pk": "a"})
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert "Traceback" not in caught.value.message
    finally:
        await gateway.stop(0)


async def test_parallel_scan_bad_segments_is_invalid_argument(stub, table: str) -> None:
    call = stub.ParallelScan(service_pb2.ParallelScanRequest(table_name=table, total_segments=0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [m async for m in call]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "total_segments" in caught.value.details()


async def test_client_cancelling_a_stream_stops_the_scan(
    client: GatewayClient, stub, fault_proxy, table: str
) -> None:
    for start in range(0, 200, 25):
        await client.batch_write(puts={table: [{"pk": f"p{i}", "sk": "x"} for i in range(start, start + 25)]})
    call = stub.ParallelScan(
        service_pb2.ParallelScanRequest(
            table_name=table,
            total_segments=2,
            page_limit=1,
            return_consumed_capacity=options_pb2.RETURN_CONSUMED_CAPACITY_NONE,
        )
    )
    received = 0
    async for message in call:
        received += len(message.items)
        if received >= 3:
            break
    call.cancel()
    await asyncio.sleep(0.3)  # let in-flight pages land
    after_cancel = fault_proxy.requests[("Scan", table)]
    await asyncio.sleep(1.0)
    assert fault_proxy.requests[("Scan", table)] == after_cancel, "the scan went on after the client left"
    # The gateway runs in this event loop: none of the stream's tasks may be left waiting.
    leftovers = [t for t in asyncio.all_tasks() if t.get_name() == f"parallel-scan:{table}"]
    assert leftovers == []
    assert after_cancel < 100  # far from the 200 pages a full scan takes
    # The gateway still serves.
    assert await client.get_item(table, {"pk": "p1", "sk": "x"}) == {"pk": "p1", "sk": "x"}
