"""The servicer on a real grpc.aio server on a free port, with a scripted backend behind the seam.

A fake backend is the point here: it makes slow calls, endless tables and bugs
on demand, which no emulator does. Real emulators are in tests/integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import SERVICE_NAME, Gateway
from dynamo_gateway_server.config import Settings

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class ScriptedBackend:
    """The backend seam as one async function the test provides; records every call."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        return await self.handler(operation, params)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    gateways: list[Gateway] = []

    async def start(handler: Handler, **settings: Any) -> Gateway:
        gateway = Gateway(Settings(port=0, backend="aws", **settings), ScriptedBackend(handler))
        await gateway.start()
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        await gateway.stop(0)


def _stub(channel: grpc.aio.Channel) -> service_pb2_grpc.DynamoDBServiceStub:
    return service_pb2_grpc.DynamoDBServiceStub(channel)


def _get(table: str = "tbl") -> service_pb2.GetItemRequest:
    return service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "a"}})


async def test_health_is_serving_and_reflection_lists_the_service(serve) -> None:
    async def unused(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("no backend call expected")

    gateway = await serve(unused)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING

    def list_services() -> list[str]:
        with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as sync_channel:
            return list(ProtoReflectionDescriptorDatabase(sync_channel).get_services())

    # The reflection client is synchronous; the server needs this loop free meanwhile.
    assert SERVICE_NAME in await asyncio.to_thread(list_services)


async def test_a_bug_is_internal_and_reveals_nothing(serve) -> None:
    async def buggy(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("secret-token-hunter2")

    gateway = await serve(buggy)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stub(channel).GetItem(_get())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in caught.value.details()
    assert "KeyError" not in caught.value.details()
    assert "request id" in caught.value.details()


async def test_a_bug_inside_a_parallel_scan_is_internal(serve) -> None:
    async def buggy_scan(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if params["Segment"] == 1:
            raise RuntimeError("secret-token-hunter2")
        return {"Items": [{"pk": {"S": "a"}}], "Count": 1, "ScannedCount": 1}

    gateway = await serve(buggy_scan)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        call = _stub(channel).ParallelScan(
            service_pb2.ParallelScanRequest(table_name="tbl", total_segments=2)
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [m async for m in call]
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in caught.value.details()


def _endless_table(page_bytes: int = 2000) -> Handler:
    """A table that never ends: every Scan page has items and a LastEvaluatedKey."""

    async def scan(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.001)  # a real backend call yields to the loop
        position = int(params.get("ExclusiveStartKey", {"pk": {"S": "0"}})["pk"]["S"]) + 1
        items = [{"pk": {"S": str(position)}, "blob": {"B": b"x" * page_bytes}}]
        return {
            "Items": items,
            "Count": 1,
            "ScannedCount": 1,
            "LastEvaluatedKey": {"pk": {"S": str(position)}},
        }

    return scan


async def test_a_slow_reader_slows_the_scan_instead_of_buffering_it(serve) -> None:
    gateway = await serve(_endless_table(page_bytes=20_000), scan_concurrency=4)
    backend = gateway.backend
    # No BDP probing: the client's receive window stays at its initial size, as a slow reader's does.
    options = [("grpc.http2.bdp_probe", 0)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}", options=options) as channel:
        call = _stub(channel).ParallelScan(
            service_pb2.ParallelScanRequest(table_name="tbl", total_segments=4)
        )
        first = await call.read()
        assert first.items
        await asyncio.sleep(1.0)  # the reader stalls
        scanned_while_stalled = len(backend.calls)
        await asyncio.sleep(0.5)
        assert len(backend.calls) == scanned_while_stalled, "the gateway kept scanning for a stalled reader"
        # What was fetched is bounded by the flow-control window plus a small queue, not by the table.
        assert scanned_while_stalled < 40
        for _ in range(20):  # reading again lets the scan go on
            await call.read()
        assert len(backend.calls) > scanned_while_stalled
        call.cancel()


async def test_graceful_shutdown_finishes_in_flight_calls(serve) -> None:
    started = asyncio.Event()

    async def slow_get(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.5)
        return {"Item": {"pk": {"S": "a"}}}

    gateway = await serve(slow_get, grace_period_s=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        in_flight = asyncio.ensure_future(_stub(channel).GetItem(_get()))
        await started.wait()
        stopping = asyncio.ensure_future(gateway.stop())
        await asyncio.sleep(0.1)
        health = await gateway.health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), None)
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        response = await in_flight
        assert response.found
        await stopping
    assert gateway.backend.closed
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stub(channel).GetItem(_get(), timeout=2)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_shutdown_cancels_calls_that_outlive_the_grace_period(serve) -> None:
    started = asyncio.Event()

    async def stuck(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)
        return {}

    gateway = await serve(stuck, grace_period_s=0.3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        in_flight = asyncio.ensure_future(_stub(channel).GetItem(_get()))
        await started.wait()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await gateway.stop()
        assert loop.time() - began < 3
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await in_flight
        assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


async def test_requests_reach_the_backend_in_dynamodb_shape(serve) -> None:
    async def echo(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Attributes": params["ExpressionAttributeValues"]}

    gateway = await serve(echo)
    request = service_pb2.UpdateItemRequest(
        table_name="tbl",
        key={"pk": {"s": "a"}},
        update_expression="SET v = :v",
        expression_attribute_values={":v": {"n": "1.50"}},
        return_values=3,  # UPDATED_OLD
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        response = await _stub(channel).UpdateItem(request)
    assert response.attributes[":v"].n == "1.50"  # numbers pass through as written, never via float
    operation, params = gateway.backend.calls[0]
    assert operation == "UpdateItem"
    assert params == {
        "TableName": "tbl",
        "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"N": "1.50"}},
        "ReturnValues": "UPDATED_OLD",
    }
