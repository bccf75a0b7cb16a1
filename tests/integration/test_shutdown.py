"""Shutting down under load: unary calls in flight finish; ParallelScan streams end saying where to resume."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import grpc
import pytest

from dynamo_gateway import GatewayClient, ServiceUnavailableError
from dynamo_gateway.json_codec import ItemJson
from dynamo_gateway.transfer import export_table
from dynamo_gateway.v1 import errors_pb2, service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.stopping import NotTakenError
from dynamo_gateway_server.tables import TableSpec
from tests.support.backends import HeldCalls, aws_backend_for, no_sleep
from tests.support.builders import item_map, py, status_details

from .conftest import Emulator, create_table

ITEMS = 200
SEGMENTS = 4


async def _gateway(emulator: Emulator, port: int = 0) -> Gateway:
    backend = await aws_backend_for(emulator.endpoint_url)
    gateway = Gateway(
        Settings(port=port, backend="aws", grace_period_s=5),
        backend,
        endpoint=emulator.endpoint_url,
        clocks=Clocks(sleep=no_sleep),
    )
    await gateway.start()
    return gateway


def _not_taken(error: BaseException) -> bool:
    if not isinstance(error, grpc.aio.AioRpcError) or error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    return status_details(error)["google.rpc.ErrorInfo"].metadata["taken"] == "false"


async def _filled_table(gateway: Gateway, name: str) -> str:
    await create_table(gateway, TableSpec(name, {"pk": "S"}, "pk"))
    for n in range(ITEMS):
        await gateway.backend.call("PutItem", {"TableName": name, "Item": {"pk": {"S": f"item-{n:03d}"}}})
    return name


@pytest.fixture
async def first(emulator: Emulator) -> Gateway:
    return await _gateway(emulator)


async def test_a_stream_cut_by_shutdown_resumes_elsewhere_without_loss(
    emulator: Emulator, first: Gateway
) -> None:
    table = await _filled_table(first, f"drained-{emulator.kind}")
    seen: list[str] = []
    request = service_pb2.ParallelScanRequest(table_name=table, total_segments=SEGMENTS, page_limit=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        stub = service_pb2_grpc.DynamoDBServiceStub(channel)
        stream = stub.ParallelScan(request, timeout=30)
        pages = 0
        # Unary calls in flight when the shutdown begins must still succeed.
        puts = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for page in stream:
                seen += [py(i)["pk"] for i in page.items]
                pages += 1
                if pages == 3:
                    for n in range(20):
                        put = service_pb2.PutItemRequest(table_name=table)
                        item_map(put.item, {"pk": f"late-{n}"})
                        puts.append(asyncio.ensure_future(stub.PutItem(put, timeout=30)))
                    stopping = asyncio.ensure_future(first.stop())
        answers = await asyncio.gather(*puts, return_exceptions=True)
        # Each answered: done, or (on a starved machine, past the shutdown delay) refused as not
        # taken, which a caller may send again; never cancelled without a word.
        assert all(not isinstance(a, BaseException) or _not_taken(a) for a in answers), answers
        assert not all(isinstance(a, BaseException) for a in answers), "the shutdown delay served none"
        await stopping
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    interrupted: errors_pb2.ScanInterrupted = status_details(ended.value)["dynamo_gateway.v1.ScanInterrupted"]
    assert interrupted.remaining, "some segments were unfinished"
    # Another replica takes the rest.
    second = await _gateway(emulator)
    try:
        request.segments.extend(interrupted.remaining)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            async for page in service_pb2_grpc.DynamoDBServiceStub(channel).ParallelScan(request, timeout=30):
                seen += [py(i)["pk"] for i in page.items]
    finally:
        await second.stop(0)
    originals = [pk for pk in seen if pk.startswith("item-")]
    assert sorted(originals) == [f"item-{n:03d}" for n in range(ITEMS)]  # each once: none lost, none twice


async def test_the_client_continues_a_scan_on_the_replica_that_replaces_a_stopped_one(
    emulator: Emulator, first: Gateway
) -> None:
    table = await _filled_table(first, f"handed-over-{emulator.kind}")
    port = first.port
    seen: list[str] = []
    replacement: list[Gateway] = []
    async with GatewayClient.connect(f"127.0.0.1:{port}", timeout_s=30) as client:
        async for page in client.parallel_scan(table, SEGMENTS, page_size=5):
            seen += [item["pk"] for item in page.items]
            if len(seen) == 15 and not replacement:
                await first.stop()  # the stream ends now, saying where each segment stopped
                replacement.append(await _gateway(emulator, port))  # a new replica at the same address
    await replacement[0].stop(0)
    assert sorted(seen) == [f"item-{n:03d}" for n in range(ITEMS)]


async def test_without_a_replica_the_client_gives_up_with_the_interruption(
    emulator: Emulator, first: Gateway
) -> None:
    table = await _filled_table(first, f"abandoned-{emulator.kind}")
    async with GatewayClient.connect(f"127.0.0.1:{first.port}", timeout_s=3) as client:
        with pytest.raises(ServiceUnavailableError):
            async for _ in client.parallel_scan(table, SEGMENTS, page_size=5):
                await first.stop()


async def test_an_export_cut_by_a_shutdown_continues_on_another_replica(
    emulator: Emulator, first: Gateway, tmp_path: pathlib.Path
) -> None:
    table = await _filled_table(first, f"exported-{emulator.kind}")
    second = await _gateway(emulator)
    stopping: list[asyncio.Future[None]] = []

    class StoppingOnTheFirstItem(ItemJson):
        def dumps(self, item: Any) -> str:
            if not stopping:
                stopping.append(asyncio.ensure_future(first.stop()))
            return super().dumps(item)

    output = tmp_path / "export.jsonl"
    try:
        # pick_first: the first gateway while it listens, then the second (as a Service would).
        target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
        async with grpc.aio.insecure_channel(target) as channel:
            stub = _CountingScans(service_pb2_grpc.DynamoDBServiceStub(channel))
            result = await export_table(
                stub, table, output, item_json=StoppingOnTheFirstItem(), total_segments=SEGMENTS, page_size=5
            )
        await stopping[0]
    finally:
        await second.stop(0)
    assert len(stub.scans) >= 2, "the export was never cut: the test proved nothing"
    assert any(start.exclusive_start_key for start in stub.scans[-1].segments)  # went on, not over
    exported = [json.loads(line)["pk"] for line in output.read_text().splitlines()]
    assert sorted(exported) == [f"item-{n:03d}" for n in range(ITEMS)]  # each once
    assert result.items == ITEMS


class _CountingScans:
    """The gateway's stub, keeping each ParallelScan request it sends."""

    def __init__(self, stub: service_pb2_grpc.DynamoDBServiceStub) -> None:
        self._stub = stub
        self.DescribeTable = stub.DescribeTable
        self.scans: list[service_pb2.ParallelScanRequest] = []

    def ParallelScan(self, request: service_pb2.ParallelScanRequest, timeout: float | None = None) -> Any:
        self.scans.append(request)
        return self._stub.ParallelScan(request, timeout=timeout)


async def test_a_call_refused_just_before_the_stop_is_sent_again_by_the_client(
    emulator: Emulator, first: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = await _filled_table(first, f"refused-{emulator.kind}")
    gate = first.gate
    refused_once = asyncio.Event()
    refuse = gate.refuse

    def refuse_and_tell() -> NotTakenError:
        refused_once.set()
        return refuse()

    monkeypatch.setattr(gate, "refuse", refuse_and_tell)
    gate.closed = True  # as in the last moment of stop(), before the listener closes
    async with GatewayClient.connect(f"127.0.0.1:{first.port}", timeout_s=30) as client:
        call = asyncio.ensure_future(client.get_item(table, {"pk": "item-001"}))
        await refused_once.wait()
        gate.closed = False  # here a replica would take the retry
        assert await call == {"pk": "item-001"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        gate.closed = True
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service_pb2_grpc.DynamoDBServiceStub(channel).GetItem(
                service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "x"}}), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    info = status_details(refused.value)["google.rpc.ErrorInfo"]
    assert (info.reason, info.metadata["failure"], info.metadata["taken"]) == (
        "Service.ServiceUnavailable",
        "ShuttingDown",
        "false",
    )
    assert status_details(refused.value)["google.rpc.RetryInfo"].retry_delay.ToNanoseconds() > 0
    gate.closed = False
    await first.stop(0)


async def test_a_call_finishing_while_the_gate_is_closed_is_answered_once_the_stop_begins(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Answered earlier, its caller's next call would wait in gRPC's queue and be cancelled with it.
    backend = HeldCalls(await aws_backend_for(emulator.endpoint_url), {"GetItem"})
    gateway = Gateway(
        Settings(port=0, backend="aws", grace_period_s=5, shutdown_delay_s=0.1),
        backend,
        endpoint=emulator.endpoint_url,
        clocks=Clocks(sleep=no_sleep),
    )
    await gateway.start()
    table = await _filled_table(gateway, f"held-{emulator.kind}")
    loop = asyncio.get_running_loop()
    stopping_at: list[float] = []
    stopping = gateway.gate.stopping
    monkeypatch.setattr(gateway.gate, "stopping", lambda: (stopping_at.append(loop.time()), stopping()))
    async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=30) as client:
        call = asyncio.ensure_future(client.get_item(table, {"pk": "item-001"}))
        await backend.reached.wait()
        stop = asyncio.ensure_future(gateway.stop())
        while not gateway.gate.closed:  # noqa: ASYNC110 (a flag of the gateway, not an event)
            await asyncio.sleep(0.005)
        backend.opened.set()  # the call finishes while new calls are refused
        assert await call == {"pk": "item-001"}
        answered_at = loop.time()
        await stop
    assert stopping_at and answered_at >= stopping_at[0]
