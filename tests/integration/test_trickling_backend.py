"""A DynamoDB that answers one byte at a time: the caller's deadline, else the read timeout, still ends the call.

The trickled answers would take a minute; each call here must end long before (its budget): at
the caller's deadline with DEADLINE_EXCEEDED, the gateway hanging up on DynamoDB then too; without
a deadline at the read timeout, with UNAVAILABLE, and for a write that may have been applied,
with OutcomeUnknown. For both of the gateway's DynamoDB clients (lean and aiobotocore), on both
emulators.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.backends import BackendUnavailableError, DynamoBackend
from dynamo_gateway_server.backends.aws import AwsBackend
from dynamo_gateway_server.backends.json_protocol import JsonProtocolBackend
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import TableSpec
from tests.support.backends import backend_options, no_sleep
from tests.support.builders import item_map, status_details
from tests.support.emulators import FaultProxy
from tests.support.trickle import TricklingProxy

from .conftest import create_table

DEADLINE_S = 0.5
READ_TIMEOUT_S = 1.0  # above DEADLINE_S: with a deadline, the deadline ends the call
# Far below the minute a trickled answer takes, far above what ending at the deadline needs.
BUDGET_S = 20.0
TRICKLED = frozenset({"GetItem", "UpdateItem"})


@pytest.fixture
async def proxy(fault_proxy: FaultProxy) -> AsyncIterator[TricklingProxy]:
    proxy = TricklingProxy(fault_proxy.endpoint_url, TRICKLED)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture(params=["lean", "aiobotocore"])
async def trickled_gateway(request: pytest.FixtureRequest, proxy: TricklingProxy) -> AsyncIterator[Gateway]:
    options = backend_options(proxy.endpoint_url, connect_timeout_s=0.5, read_timeout_s=READ_TIMEOUT_S)
    backend: DynamoBackend = await (
        JsonProtocolBackend.start(options) if request.param == "lean" else AwsBackend.start(options)
    )
    # One attempt per call: a read timeout is retried like any unanswered call, which only multiplies the wait.
    settings = Settings(port=0, backend="aws", grace_period_s=0, retry_unavailable_attempts=1)
    gateway = Gateway(settings, backend, endpoint=proxy.endpoint_url, clocks=Clocks(sleep=no_sleep))
    await gateway.start()
    # A first call pays for the client's setup (endpoint, credentials, connection): not inside a
    # deadline. On a busy machine that can take longer than the read timeout: try again.
    for attempt in itertools.count(1):
        try:
            await gateway.backend.call("ListTables", {})
            break
        except BackendUnavailableError:
            if attempt == 3:
                raise
    yield gateway
    await gateway.stop(0)


@pytest.fixture
async def stub(trickled_gateway: Gateway) -> AsyncIterator[service_pb2_grpc.DynamoDBServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{trickled_gateway.port}") as channel:
        yield service_pb2_grpc.DynamoDBServiceStub(channel)


_table_numbers = itertools.count()


async def _table(untrickled: Gateway) -> str:
    """A fresh table, made through the session's gateway (this one's read timeout is short)."""
    return await create_table(untrickled, TableSpec(f"trickled-{next(_table_numbers)}", {"pk": "S"}, "pk"))


async def _failure(call: Any) -> grpc.aio.AioRpcError:
    """How a grpc.aio call (typed by the stubs as its response) ended, within the budget: a call
    that waits for the trickle fails here."""
    # The gateway answers 30 ms before the caller's deadline; a full garbage collection of the
    # session's heap in this process can outlast that (as in test_resilience).
    gc.disable()
    try:
        async with asyncio.timeout(BUDGET_S):
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await call
    finally:
        gc.enable()
    return ended.value


async def test_a_read_ends_at_the_callers_deadline(
    gateway: Gateway, proxy: TricklingProxy, stub: service_pb2_grpc.DynamoDBServiceStub
) -> None:
    table = await _table(gateway)
    request = service_pb2.GetItemRequest(table_name=table)
    item_map(request.key, {"pk": "a"})
    ended = await _failure(stub.GetItem(request, timeout=DEADLINE_S))
    assert ended.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert proxy.trickles_begun["GetItem"] == 1 and not proxy.trickles_finished
    # The gateway lets go of DynamoDB's answer at the deadline, not at its last byte.
    async with asyncio.timeout(BUDGET_S):
        await proxy.hung_up.wait()
    details = status_details(ended)
    # Its answer carries the taxonomy's details. It leaves 30 ms for the way back, so on a machine
    # busy enough the client's own expiry (no details) comes first; that is no failure of the gateway.
    if details:
        assert details["google.rpc.ErrorInfo"].reason == "Service.DeadlineExceeded"


async def test_a_write_cut_by_the_read_timeout_is_reported_as_outcome_unknown(
    gateway: Gateway, proxy: TricklingProxy, stub: service_pb2_grpc.DynamoDBServiceStub
) -> None:
    table = await _table(gateway)
    request = service_pb2.UpdateItemRequest(table_name=table, update_expression="ADD n :one")
    item_map(request.key, {"pk": "counter"})
    item_map(request.expression_attribute_values, {":one": 1})
    # No caller deadline: the read timeout, the gateway's own, cuts it (the caller's deadline cuts
    # writes the same way: test_resilience).
    ended = await _failure(stub.UpdateItem(request))
    assert ended.code() == grpc.StatusCode.UNAVAILABLE
    details = status_details(ended)
    assert details["google.rpc.ErrorInfo"].metadata["outcome"] == "unknown"
    assert details["dynamo_gateway.v1.OutcomeUnknown"].operation == "UpdateItem"
    # And it was applied: repeating it blindly would have counted twice.
    stored = await gateway.backend.call("GetItem", {"TableName": table, "Key": {"pk": {"S": "counter"}}})
    assert stored["Item"]["n"] == {"N": "1"}


async def test_without_a_deadline_the_read_timeout_ends_the_call(
    gateway: Gateway, proxy: TricklingProxy, stub: service_pb2_grpc.DynamoDBServiceStub
) -> None:
    table = await _table(gateway)
    request = service_pb2.GetItemRequest(table_name=table)
    item_map(request.key, {"pk": "a"})
    ended = await _failure(stub.GetItem(request))
    assert ended.code() == grpc.StatusCode.UNAVAILABLE
    info = status_details(ended)["google.rpc.ErrorInfo"]
    assert (info.reason, info.metadata["failure"]) == ("Service.ServiceUnavailable", "ReadTimeoutError")
    assert proxy.trickles_begun["GetItem"] == 1 and not proxy.trickles_finished
