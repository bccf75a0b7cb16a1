"""Every error mapping, provoked for real: by the emulators, or by the fault proxy in front of them."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from dynamo_gateway import (
    AccessDeniedError,
    ConditionFailedError,
    GatewayError,
    IdempotentParameterMismatchError,
    InternalServerError,
    InvalidCredentialsError,
    InvalidExpressionError,
    InvalidTableError,
    ItemCollectionSizeLimitExceededError,
    ItemTooLargeError,
    MissingRequiredKeyError,
    ProvisionedThroughputExceededError,
    RequestLimitExceededError,
    ResourceNotFoundError,
    ServiceUnavailableError,
    ThrottlingError,
    TokenExpiredError,
    TransactConditionCheck,
    TransactionCanceledError,
    TransactionConflictError,
    TransactionInProgressError,
    TransactPut,
    TypeMismatchError,
    WriteConflictError,
)
from dynamo_gateway.client import GatewayClient
from dynamo_gateway.v1 import options_pb2, service_pb2
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.backends.memory import free_loopback_port
from dynamo_gateway_server.config import Settings
from tests.support.backends import aws_backend_for, no_sleep
from tests.support.builders import item_map, status_details


def _error_info(error: grpc.aio.AioRpcError):
    return status_details(error)["google.rpc.ErrorInfo"]


async def _rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_dynamodb_validation_is_invalid_argument(emulator, stub, table: str) -> None:
    request = service_pb2.GetItemRequest(table_name=table)
    item_map(request.key, {"pk": "only the partition key"})
    error = await _rpc_error(stub.GetItem(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = _error_info(error)
    # DynamoDB (and dynalite) say "The provided key element does not match the schema";
    # moto says only "Validation Exception", which names no leaf.
    assert info.reason == (
        "Validation.InvalidParameter" if emulator.kind == "moto" else "Validation.InvalidKey"
    )
    assert info.domain == "dynamo-gateway"
    assert info.metadata["aws_error_code"] == "ValidationException"
    assert info.metadata["table"] == table
    assert "google.rpc.RetryInfo" not in status_details(error)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c, t: c.put_item(t, {"pk": "a"}), MissingRequiredKeyError),
        (lambda c, t: c.put_item(t, {"pk": 1, "sk": "s"}), TypeMismatchError),
        (
            lambda c, t: c.put_item(t, {"pk": "a", "sk": "b"}, condition="this is not ( an expression"),
            InvalidExpressionError,
        ),
        (lambda c, t: c.put_item(t, {"pk": "a", "sk": "b", "big": "x" * 410_000}), ItemTooLargeError),
        (lambda c, t: c.get_item("ab", {"pk": "a"}), InvalidTableError),
    ],
    ids=["missing-key", "type-mismatch", "bad-expression", "item-too-large", "bad-table-name"],
)
async def test_dynamodb_validation_leaves(client: GatewayClient, table: str, call, expected) -> None:
    with pytest.raises(GatewayError) as caught:
        await call(client, table)
    assert type(caught.value) is expected, caught.value
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == expected.REASON
    assert not caught.value.retryable


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
    assert details["google.rpc.ErrorInfo"].reason in (
        "Configuration.InvalidTable",
        "Validation.InvalidParameter",
        "Validation.TypeMismatch",
        "Validation.MissingRequiredKey",
    )
    assert [v.field for v in details["google.rpc.BadRequest"].field_violations] == [field]


async def test_conditional_check_failure_is_failed_precondition(
    stub, client: GatewayClient, table: str
) -> None:
    await client.put_item(table, {"pk": "p", "sk": "s", "v": 1})
    with pytest.raises(ConditionFailedError) as caught:
        await client.put_item(table, {"pk": "p", "sk": "s", "v": 2}, condition="attribute_not_exists(pk)")
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "ConditionalCheck.ConditionFailed"
    assert caught.value.metadata["aws_error_code"] == "ConditionalCheckFailedException"
    assert not caught.value.retryable
    assert caught.value.item is None  # not asked for
    assert await client.get_item(table, {"pk": "p", "sk": "s"}) == {"pk": "p", "sk": "s", "v": 1}


async def test_failed_condition_returns_old_item_when_asked(
    emulator, client: GatewayClient, table: str
) -> None:
    if emulator.kind == "dynalite":
        pytest.skip("dynalite predates ReturnValuesOnConditionCheckFailure")
    await client.put_item(table, {"pk": "p", "sk": "s", "v": 1, "b": b"\x00"})
    with pytest.raises(ConditionFailedError) as caught:
        await client.update_item(
            table,
            {"pk": "p", "sk": "s"},
            "SET v = :two",
            condition="v = :zero",
            values={":two": 2, ":zero": 0},
            return_old_on_failure=True,
        )
    assert caught.value.item == {"pk": "p", "sk": "s", "v": 1, "b": b"\x00"}


async def test_an_old_item_too_large_for_trailers_is_left_out_saying_so(
    emulator, client: GatewayClient, table: str
) -> None:
    if emulator.kind == "dynalite":
        pytest.skip("dynalite predates ReturnValuesOnConditionCheckFailure")
    large = {"pk": "big", "sk": "s", "v": 1, "blob": "x" * 30_000}
    await client.put_item(table, large)
    with pytest.raises(ConditionFailedError) as caught:
        await client.put_item(
            table, {**large, "v": 2}, condition="v = :zero", values={":zero": 0}, return_old_on_failure=True
        )
    # Whole, the item would make gRPC refuse the trailers: RESOURCE_EXHAUSTED without any detail.
    assert caught.value.reason == "ConditionalCheck.ConditionFailed"
    assert caught.value.item is None
    assert "over the 4096" in caught.value.metadata["items_omitted"]
    assert await client.get_item(table, {"pk": "big", "sk": "s"}) == large


async def test_missing_table_is_not_found(stub, client: GatewayClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        await client.get_item("no-such-table", {"pk": "a"})
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "Service.ResourceNotFound"
    assert caught.value.metadata["table"] == "no-such-table"
    assert not caught.value.retryable
    with pytest.raises(ResourceNotFoundError):
        await client.describe_table("no-such-table")
    with pytest.raises(ResourceNotFoundError):
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
    assert error.reason == "Transaction.TransactionCanceled"
    assert not error.retryable  # a false condition stays false
    assert [r.code for r in error.reasons] == ["None", "ConditionalCheckFailed"]
    assert error.reasons[1].item == {"pk": "t", "sk": "taken", "owner": "someone"}
    assert await client.get_item(table, {"pk": "t", "sk": "new"}) is None  # nothing applied


# Every AWS error code no emulator produces on demand, injected by the fault proxy:
# (code, gRPC code, client exception, attempts the gateway makes for a GetItem).
INJECTED_ROWS = [
    ("ProvisionedThroughputExceededException", "RESOURCE_EXHAUSTED", ProvisionedThroughputExceededError, 10),
    ("ThrottlingException", "RESOURCE_EXHAUSTED", ThrottlingError, 10),
    ("RequestLimitExceeded", "RESOURCE_EXHAUSTED", RequestLimitExceededError, 10),
    ("LimitExceededException", "RESOURCE_EXHAUSTED", RequestLimitExceededError, 10),
    ("InternalServerError", "UNAVAILABLE", InternalServerError, 3),
    ("ServiceUnavailable", "UNAVAILABLE", ServiceUnavailableError, 3),
    ("TransactionConflictException", "ABORTED", WriteConflictError, 3),
    ("TransactionInProgressException", "ABORTED", TransactionInProgressError, 3),
    ("IdempotentParameterMismatchException", "INVALID_ARGUMENT", IdempotentParameterMismatchError, 1),
    (
        "ItemCollectionSizeLimitExceededException",
        "FAILED_PRECONDITION",
        ItemCollectionSizeLimitExceededError,
        1,
    ),
    ("AccessDeniedException", "PERMISSION_DENIED", AccessDeniedError, 1),
    ("ExpiredTokenException", "UNAVAILABLE", TokenExpiredError, 1),
    ("UnrecognizedClientException", "FAILED_PRECONDITION", InvalidCredentialsError, 1),
]


@pytest.mark.parametrize(
    ("aws_code", "grpc_code", "expected", "attempts"), INJECTED_ROWS, ids=[r[0] for r in INJECTED_ROWS]
)
async def test_every_injected_aws_error_maps_to_its_leaf(
    client: GatewayClient,
    fault_proxy,
    aws_code: str,
    grpc_code: str,
    expected: type[GatewayError],
    attempts: int,
) -> None:
    table = f"fault-{aws_code}-get"
    before = fault_proxy.requests[("GetItem", table)]
    with pytest.raises(GatewayError) as caught:
        await client.get_item(table, {"pk": "a"})
    error = caught.value
    assert type(error) is expected
    assert error.code == grpc.StatusCode[grpc_code]
    assert error.reason == expected.REASON
    assert error.metadata["aws_error_code"] == aws_code
    assert error.metadata["table"] == table
    assert error.retryable == (attempts > 1)  # RetryInfo exactly on retryable errors
    assert fault_proxy.requests[("GetItem", table)] - before == attempts


@pytest.mark.transactions
async def test_transaction_cancelled_only_by_conflicts_is_retried_then_a_conflict(
    client: GatewayClient, fault_proxy
) -> None:
    table = "conflict-orders"
    before = fault_proxy.requests[("TransactWriteItems", table)]
    with pytest.raises(TransactionConflictError) as caught:
        await client.transact_write([TransactPut(table, {"pk": "a"})])
    assert caught.value.code == grpc.StatusCode.ABORTED
    assert caught.value.retryable
    assert [r.code for r in caught.value.reasons] == ["TransactionConflict"]
    assert fault_proxy.requests[("TransactWriteItems", table)] - before == 3


async def test_ambiguous_failure_of_a_counter_update_is_not_repeated(
    client: GatewayClient, fault_proxy
) -> None:
    table = "fault-InternalServerError-counters"
    before = fault_proxy.requests[("UpdateItem", table)]
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.update_item(table, {"pk": "c"}, "ADD hits :one", values={":one": 1})
    assert caught.value.outcome_unknown
    assert caught.value.retryable
    assert caught.value.metadata["outcome"] == "unknown"
    assert "ADD" in caught.value.message
    assert fault_proxy.requests[("UpdateItem", table)] - before == 1  # sent once, never again
    # The same 5xx on an idempotent write (a plain put) is retried.
    before = fault_proxy.requests[("PutItem", table)]
    with pytest.raises(InternalServerError):
        await client.put_item(table, {"pk": "c", "hits": 5})
    assert fault_proxy.requests[("PutItem", table)] - before == 3


async def test_unreachable_backend_is_unavailable_not_internal() -> None:
    dead_port = free_loopback_port()  # must be dead (nothing listens), not a server's: so not port 0
    settings = Settings(port=0, backend="aws")
    backend = await aws_backend_for(f"http://127.0.0.1:{dead_port}", connect_timeout_s=1, read_timeout_s=1)
    gateway = Gateway(settings, backend, endpoint="dead", clocks=Clocks(sleep=no_sleep))
    await gateway.start()
    try:
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}") as client:
            with pytest.raises(ServiceUnavailableError) as caught:
                await client.get_item("tbl", {"pk": "a"})
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert caught.value.metadata["failure"] == "EndpointConnectionError"
        assert caught.value.retryable
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
    # The gateway runs in this event loop: once it has heard of the cancel, the stream's tasks
    # end, and nothing is left that could send another Scan.
    stream_tasks = {t for t in asyncio.all_tasks() if t.get_name() == f"parallel-scan:{table}"}
    if stream_tasks:
        _, still_running = await asyncio.wait(stream_tasks, timeout=5)
        assert not still_running, "the stream's tasks outlived the client's cancel"
    assert not [t for t in asyncio.all_tasks() if t.get_name() == f"parallel-scan:{table}"]
    # The gateway still serves; this call's round trip through the proxy also lets the Scans
    # that were already on the wire when the tasks ended land there.
    assert await client.get_item(table, {"pk": "p1", "sk": "x"}) == {"pk": "p1", "sk": "x"}
    after_cancel = fault_proxy.requests[("Scan", table)]
    assert after_cancel < 100  # far from the 200 pages a full scan takes
    assert await client.get_item(table, {"pk": "p1", "sk": "x"}) == {"pk": "p1", "sk": "x"}
    assert fault_proxy.requests[("Scan", table)] == after_cancel, "the scan went on after the client left"
