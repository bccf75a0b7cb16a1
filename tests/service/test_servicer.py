"""The servicer on a real grpc.aio server on port 0, with a scripted backend behind the seam.

A fake backend is the point here: it makes slow calls, endless tables and bugs
on demand, which no emulator does. Real emulators are in tests/integration.
Calls that must stay in flight wait on events the test sets, never on the clock;
the stalled-reader test plays gRPC's side itself, so that the stall is certain.
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
from dynamo_gateway_server.app import SERVICE_NAME, Clocks, Gateway, start_gateway
from dynamo_gateway_server.batches import BatchRunner
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.key_schema import KeySchema, KeySchemaCache
from dynamo_gateway_server.resilience import Backoff
from dynamo_gateway_server.service import DynamoDBServicer
from tests.support.backends import no_sleep

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
        gateway = Gateway(
            Settings(port=0, backend="aws", **settings),
            ScriptedBackend(handler),
            clocks=Clocks(sleep=no_sleep),
        )
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
        await asyncio.sleep(0)  # a real backend call yields to the loop
        position = int(params.get("ExclusiveStartKey", {"pk": {"S": "0"}})["pk"]["S"]) + 1
        items = [{"pk": {"S": str(position)}, "blob": {"B": b"x" * page_bytes}}]
        return {
            "Items": items,
            "Count": 1,
            "ScannedCount": 1,
            "LastEvaluatedKey": {"pk": {"S": str(position)}},
        }

    return scan


class StalledReader:
    """A ParallelScan's context whose client reads nothing until `resume()`.

    Each write waits, as gRPC's does once a client that stopped reading has a full
    flow-control window; here the window is full from the start, by construction.
    """

    def __init__(self) -> None:
        self.received: list[service_pb2.ParallelScanResponse] = []
        self._reading = asyncio.Event()
        self._received_more = asyncio.Condition()

    def time_remaining(self) -> float | None:
        return None

    async def write(self, message: service_pb2.ParallelScanResponse) -> None:
        await self._reading.wait()
        self.received.append(message)
        async with self._received_more:
            self._received_more.notify_all()

    def resume(self) -> None:
        self._reading.set()

    async def until_received(self, count: int) -> None:
        async with asyncio.timeout(5), self._received_more:
            await self._received_more.wait_for(lambda: len(self.received) >= count)


async def _run_every_ready_task(turns: int = 100) -> None:
    """Turns of the event loop, with no wait on the clock: every task of this loop that can
    make progress without I/O makes it within a few turns; a hundred leave no doubt."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_a_stalled_reader_stalls_the_scan_instead_of_buffering_it() -> None:
    concurrency = 4
    backend = ScriptedBackend(_endless_table())
    # The servicer alone, with the test in the client's place (ParallelScan uses no batches).
    batches = BatchRunner(
        backend, KeySchemaCache(backend), max_items=25, concurrency=1, leftovers=Backoff(1, 0)
    )
    servicer = DynamoDBServicer(backend, concurrency, batches)
    reader = StalledReader()
    request = service_pb2.ParallelScanRequest(table_name="tbl", total_segments=4)
    scan = asyncio.create_task(servicer.ParallelScan(request, reader))  # type: ignore[arg-type]  # a fake context
    await _run_every_ready_task()  # no socket and no timer in play: the scan goes as far as it can
    # One page waiting to be written, a full queue, and one page per worker waiting for room
    # in it: that much and no more, although the table never ends.
    assert len(backend.calls) == 1 + 2 * concurrency
    assert reader.received == []
    reader.resume()  # reading again lets the scan go on
    await reader.until_received(20)
    assert len(backend.calls) > 1 + 2 * concurrency
    scan.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scan
    assert [t for t in asyncio.all_tasks() if t.get_name() == "parallel-scan:tbl"] == []


async def test_graceful_shutdown_finishes_in_flight_calls(serve) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_get(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"Item": {"pk": {"S": "a"}}}

    gateway = await serve(slow_get, grace_period_s=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        in_flight = asyncio.ensure_future(_stub(channel).GetItem(_get()))
        await started.wait()
        stopping = asyncio.ensure_future(gateway.stop())
        # One turn of the loop runs stop() up to its first wait: NOT_SERVING, then the start
        # of the server's shutdown, with no wait between them.
        await asyncio.sleep(0)
        health = await gateway.health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), None)
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        # With no grace period, gRPC would cancel every call within these turns of the loop;
        # within the grace period it only waits for them.
        await _run_every_ready_task()
        assert not stopping.done()
        release.set()  # the call finishes within the grace period
        response = await in_flight
        assert response.found
        await stopping
    assert gateway.dynamodb.closed
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stub(channel).GetItem(_get(), timeout=2)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_shutdown_cancels_calls_that_outlive_the_grace_period(serve) -> None:
    started = asyncio.Event()

    async def stuck(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()  # until the shutdown cancels it
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
    operation, params = gateway.dynamodb.calls[0]
    assert operation == "UpdateItem"
    assert params == {
        "TableName": "tbl",
        "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"N": "1.50"}},
        "ReturnValues": "UPDATED_OLD",
        "ReturnConsumedCapacity": "TOTAL",  # the gateway's own, for its metrics (capacity.py)
    }


async def test_the_first_call_on_a_table_does_not_wait_for_its_key_schema(serve) -> None:
    # DescribeTable hangs until the test releases it: if the GetItem waited on the gateway's
    # own key-schema lookup (telemetry's, batches' or the guard's), it would never answer.
    release = asyncio.Event()
    described = asyncio.Event()

    async def handler(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DescribeTable":
            described.set()
            await release.wait()
            return {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}
        return {"Item": {"pk": {"S": "a"}}}

    gateway = await serve(handler)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        response = await _stub(channel).GetItem(_get("undeclared"), timeout=5)
    assert response.found
    await asyncio.wait_for(described.wait(), 5)  # learnt in the background, after the answer
    assert gateway.schemas.get("undeclared") is None
    release.set()
    await gateway.schemas.settled()
    assert gateway.schemas.get("undeclared") is not None


async def test_the_tables_file_key_schemas_are_known_from_the_start(tmp_path) -> None:
    tables = tmp_path / "tables.yaml"
    tables.write_text("tables:\n  - name: orders\n    attributes: {id: S}\n    key: {partition: id}\n")
    settings = Settings(port=0, backend="memory", tables_file=str(tables), metrics_port=-1)
    gateway = await start_gateway(settings)
    try:
        assert gateway.schemas.get("orders") == KeySchema("id")
    finally:
        await gateway.stop(0)
