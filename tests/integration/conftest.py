"""Integration fixtures: the gateway against real DynamoDB-compatible servers on loopback.

Every test here runs once per emulator (moto's server mode and dynalite). Between
the gateway and the emulator sits a FaultProxy, so tests can also provoke the
DynamoDB errors no emulator produces (throttling, 5xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from dynamo_gateway import GatewayClient
from dynamo_gateway.v1 import service_pb2_grpc
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import TableSpec, create_table_params
from tests.support.backends import aws_backend_for, no_sleep
from tests.support.emulators import DynaliteProcess, FaultProxy
from tests.support.tables import APP_TABLE


@dataclass
class Emulator:
    kind: str
    endpoint_url: str
    supports_transactions: bool
    process: Any

    async def ensure_running(self) -> None:
        if isinstance(self.process, DynaliteProcess):
            await self.process.ensure_running()


@pytest.fixture(scope="session", params=["moto", "dynalite"])
def emulator(request: pytest.FixtureRequest) -> Emulator:
    if request.param == "moto":
        process = request.getfixturevalue("moto")
        return Emulator("moto", process.endpoint_url, True, process)
    process = request.getfixturevalue("dynalite_server")
    return Emulator("dynalite", process.endpoint_url, False, process)


@pytest.fixture(scope="session")
async def fault_proxy(emulator: Emulator) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(emulator.endpoint_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture(scope="session")
async def gateway(fault_proxy: FaultProxy) -> AsyncIterator[Gateway]:
    """The session's gateway, with the full resilience layer but backoffs that do not wait.

    Its breaker never opens (tests here provoke many failures on purpose); breaker tests
    start gateways of their own.
    """
    settings = Settings(
        port=0, backend="aws", scan_concurrency=4, grace_period_s=1, breaker_failure_threshold=10**9
    )
    backend = await aws_backend_for(fault_proxy.endpoint_url)
    gateway = Gateway(settings, backend, endpoint=fault_proxy.endpoint_url, clocks=Clocks(sleep=no_sleep))
    await gateway.start()
    yield gateway
    await gateway.stop(0)


@pytest.fixture(autouse=True)
async def _emulator_alive(emulator: Emulator, request: pytest.FixtureRequest) -> None:
    await emulator.ensure_running()
    if request.node.get_closest_marker("transactions") and not emulator.supports_transactions:
        pytest.skip(f"{emulator.kind} has no transactions")


@pytest.fixture(scope="session")
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def stub(channel: grpc.aio.Channel) -> service_pb2_grpc.DynamoDBServiceStub:
    return service_pb2_grpc.DynamoDBServiceStub(channel)


@pytest.fixture(scope="session")
def client(channel: grpc.aio.Channel) -> GatewayClient:
    return GatewayClient(channel, timeout_s=30)


_table_numbers = itertools.count()


async def create_table(gateway: Gateway, spec: TableSpec) -> str:
    """Creates the table and returns its name once it is ACTIVE.

    moto creates tables ACTIVE and dynalite runs with --createTableMs 0, so no pause is
    needed between two DescribeTables: each one's round trip is enough.
    """

    async def status() -> str:
        described = await gateway.backend.call("DescribeTable", {"TableName": spec.name})
        return str(described["Table"]["TableStatus"])

    await gateway.backend.call("CreateTable", create_table_params(spec))
    try:
        async with asyncio.timeout(5):
            while await status() != "ACTIVE":
                pass
    except TimeoutError:
        raise AssertionError(f"table {spec.name} never became ACTIVE") from None
    return spec.name


@pytest.fixture
async def table(gateway: Gateway) -> str:
    """A fresh, empty table shaped like the example single-table design."""
    name = f"app-{next(_table_numbers)}"
    return await create_table(gateway, TableSpec(**{**APP_TABLE.__dict__, "name": name}))


@pytest.fixture
async def hash_table(gateway: Gateway) -> str:
    """A fresh table with only a partition key (pk, a string)."""
    name = f"hash-{next(_table_numbers)}"
    return await create_table(gateway, TableSpec(name=name, attributes={"pk": "S"}, partition_key="pk"))


@contextlib.asynccontextmanager
async def gateway_declaring(
    endpoint_url: str, specs: list[TableSpec], backend_options: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """A gateway in front of `endpoint_url` whose tables file declares `specs`, each created and ACTIVE."""
    backend = await aws_backend_for(endpoint_url, **(backend_options or {}))
    gateway = Gateway(
        Settings(port=0, backend="aws", grace_period_s=0, **settings),
        backend,
        endpoint=endpoint_url,
        clocks=Clocks(sleep=no_sleep),
        declared_tables=specs,
        created_tables={spec.name for spec in specs},
    )
    await gateway.start()
    try:
        for spec in specs:
            await create_table(gateway, spec)
        yield gateway
    finally:
        await gateway.stop(0)
