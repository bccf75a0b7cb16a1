"""A ParallelScan whose reader stops reading: the scan stops too, then ends saying where to resume.

While the reader reads nothing, gRPC's flow control stops the gateway's writes, the small page
queue fills and the segment workers block: what the gateway holds stays bounded (at most
2 x scan_concurrency pages it scanned but never sent). After --stream-stall-timeout-s the stream
ends with DEADLINE_EXCEEDED and ScanInterrupted; resuming from it sees every item exactly once.
On both emulators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import grpc
import pytest

from dynamo_gateway import GatewayClient
from dynamo_gateway.v1 import errors_pb2, service_pb2, service_pb2_grpc
from dynamo_gateway_server.backends import DynamoBackend
from dynamo_gateway_server.tables import TableSpec
from tests.support.builders import item_map, py, status_details
from tests.support.emulators import FaultProxy

from .conftest import Emulator, gateway_declaring

ITEMS = 240
ITEM_BYTES = 2000
PAGE_ITEMS = 5
SEGMENTS = 4
SCAN_CONCURRENCY = 2
STALL_TIMEOUT_S = 0.5
# The reader's HTTP/2 window stays at 64 KB (no growth from bandwidth probes): a few pages of
# ~10 KB fill it, so the stall comes long before the table's ~50 pages are scanned.
READER_OPTIONS = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 * 1024)]
STALL_LOG = "the reader took no page"


async def _fill(backend: DynamoBackend, table: str) -> None:
    items = [{"pk": {"S": f"item-{n:03d}"}, "blob": {"S": "x" * ITEM_BYTES}} for n in range(ITEMS)]
    for first in range(0, ITEMS, 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
        await backend.call("BatchWriteItem", {"RequestItems": {table: batch}})


class _Heard(logging.Handler):
    """Knows when the gateway has logged a line containing `text`."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def stalled() -> Iterator[_Heard]:
    """Set when the gateway logs that it ended a stalled stream."""
    heard = _Heard(STALL_LOG)
    service_log = logging.getLogger("dynamo_gateway_server.service")
    service_log.addHandler(heard)
    yield heard
    service_log.removeHandler(heard)


async def test_a_stalled_reader_gets_resume_keys_and_resuming_sees_every_item_once(
    emulator: Emulator, fault_proxy: FaultProxy, stalled: _Heard
) -> None:
    await _stall_then_resume(emulator, fault_proxy, stalled)


async def _stall_then_resume(emulator: Emulator, fault_proxy: FaultProxy, stalled: _Heard) -> None:
    table = f"stalled-{emulator.kind}"
    async with gateway_declaring(
        fault_proxy.endpoint_url,
        [TableSpec(table, {"pk": "S"}, "pk")],
        scan_concurrency=SCAN_CONCURRENCY,
        stream_stall_timeout_s=STALL_TIMEOUT_S,
    ) as gateway:
        await _fill(gateway.backend, table)
        seen: list[str] = []
        request = service_pb2.ParallelScanRequest(
            table_name=table, total_segments=SEGMENTS, page_limit=PAGE_ITEMS
        )
        target = f"127.0.0.1:{gateway.port}"
        async with grpc.aio.insecure_channel(target, options=READER_OPTIONS) as channel:
            stub = service_pb2_grpc.DynamoDBServiceStub(channel)
            stream = stub.ParallelScan(request, timeout=60)
            delivered = 0
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for page in stream:
                    seen += [py(item)["pk"] for item in page.items]
                    delivered += 1
                    if delivered == 2:  # then stop reading until the gateway gives up on us
                        async with asyncio.timeout(10):
                            await stalled.event.wait()
                        scans_while_stalled = fault_proxy.requests[("Scan", table)]
                        # Other calls are served meanwhile, on the same connection.
                        get = service_pb2.GetItemRequest(table_name=table)
                        item_map(get.key, {"pk": "item-000"})
                        assert py((await stub.GetItem(get, timeout=10)).item)["pk"] == "item-000"
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        details = status_details(ended.value)
        assert details["google.rpc.ErrorInfo"].metadata["failure"] == "ReaderStalled"
        interrupted: errors_pb2.ScanInterrupted = details["dynamo_gateway.v1.ScanInterrupted"]
        assert interrupted.remaining, "the stall came before the end of the table"
        # What the gateway scanned but never sent: the queue and one page per blocked worker.
        assert scans_while_stalled - delivered <= 2 * SCAN_CONCURRENCY
        # Resumed (on the same gateway here), from the pages the reader was sent.
        request.segments.extend(interrupted.remaining)
        async with grpc.aio.insecure_channel(target) as channel:
            async for page in service_pb2_grpc.DynamoDBServiceStub(channel).ParallelScan(request, timeout=60):
                seen += [py(item)["pk"] for item in page.items]
    assert sorted(seen) == [f"item-{n:03d}" for n in range(ITEMS)]  # each once: none lost, none twice


async def test_the_client_goes_on_by_itself_after_its_caller_stalled(
    emulator: Emulator, stalled: _Heard
) -> None:
    table = f"stalled-client-{emulator.kind}"
    seen: list[str] = []
    async with gateway_declaring(
        emulator.endpoint_url,
        [TableSpec(table, {"pk": "S"}, "pk")],
        scan_concurrency=SCAN_CONCURRENCY,
        stream_stall_timeout_s=STALL_TIMEOUT_S,
    ) as gateway:
        await _fill(gateway.backend, table)
        target = f"127.0.0.1:{gateway.port}"
        async with GatewayClient.connect(target, options=READER_OPTIONS) as client:
            async for page in client.parallel_scan(table, SEGMENTS, page_size=PAGE_ITEMS):
                seen += [item["pk"] for item in page.items]
                if not stalled.event.is_set():  # the caller looks away until the gateway gives up
                    async with asyncio.timeout(10):
                        await stalled.event.wait()
    assert stalled.event.is_set()
    assert sorted(seen) == [f"item-{n:03d}" for n in range(ITEMS)]  # each once: none lost, none twice
