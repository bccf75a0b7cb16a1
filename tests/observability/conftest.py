"""Observability fixtures: the real gateway (start_gateway's chain) against moto behind a FaultProxy.

Each test gets its own gateway, so metric values start at zero and can be asserted
exactly; spans go to an in-memory exporter, metrics are scraped from the real
/metrics port, logs are captured through the real formatter.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from dynamo_gateway.v1 import service_pb2_grpc
from dynamo_gateway_server.app import Gateway, start_gateway
from dynamo_gateway_server.backends.aws import AwsBackend
from dynamo_gateway_server.backends.memory import MotoServerProcess
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.observability.telemetry import Telemetry
from dynamo_gateway_server.tables import TableSpec, create_table_params
from tests.support.backends import aws_backend_for
from tests.support.emulators import FaultProxy
from tests.support.logs import capture_logs  # noqa: F401  (a fixture)

# The gateway reaches moto through the standard credential chain, as in production.
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "observability-test-key",
    "AWS_SECRET_ACCESS_KEY": "observability-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Fast, bounded retries: backoffs of a millisecond, three attempts, a breaker that stays closed.
TEST_SETTINGS: dict[str, Any] = {
    "port": 0,
    "metrics_port": 0,
    "backend": "aws",
    "grace_period_s": 0.5,
    "retry_throughput_attempts": 3,
    "retry_throughput_base_s": 0.001,
    "retry_internal_error_base_s": 0.001,
    "retry_unavailable_attempts": 1,
    "retry_max_delay_s": 0.002,
    "breaker_failure_threshold": 10**6,
}


@pytest.fixture(scope="session")
async def proxy(moto: MotoServerProcess) -> AsyncIterator[FaultProxy]:
    fault_proxy = FaultProxy(moto.endpoint_url)
    await fault_proxy.start()
    yield fault_proxy
    await fault_proxy.stop()


@pytest.fixture(scope="session")
async def admin(moto: MotoServerProcess) -> AsyncIterator[AwsBackend]:
    """Straight to moto, for creating tables outside the gateway (and outside its metrics)."""
    backend = await aws_backend_for(
        moto.endpoint_url, max_concurrency=4, static_credentials=("admin", "admin")
    )
    yield backend
    await backend.close()


_numbers = itertools.count()


@pytest.fixture
def table_factory(admin: AwsBackend) -> Callable[..., Awaitable[str]]:
    async def create(prefix: str = "obs", sort_key: bool = True) -> str:
        name = f"{prefix}-{next(_numbers)}"
        attributes = {"pk": "S", "sk": "S"} if sort_key else {"pk": "S"}
        spec = TableSpec(
            name=name, attributes=attributes, partition_key="pk", sort_key="sk" if sort_key else None
        )
        await admin.call("CreateTable", create_table_params(spec))
        return name

    return create


@dataclass
class Observed:
    """One running gateway and what it emitted."""

    gateway: Gateway
    exporter: InMemorySpanExporter
    channel: grpc.aio.Channel
    stub: service_pb2_grpc.DynamoDBServiceStub
    http: aiohttp.ClientSession

    async def learnt(self) -> None:
        """Waits for the key schemas the calls so far started to learn (in the background)."""
        await self.gateway.schemas.settled()

    def spans(self, prefix: str = "dynamodb.") -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if span.name.startswith(prefix)]

    async def scrape_text(self) -> str:
        port = self.gateway.telemetry.metrics_port
        async with self.http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            return await response.text()

    async def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of the real /metrics endpoint: (name, labels) -> value."""
        samples = {}
        for family in text_string_to_metric_families(await self.scrape_text()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the series of `name` whose labels include these (as `sum` in PromQL would add
    them up over the labels not named); 0 when there is none, as Prometheus treats a counter."""
    wanted = frozenset(labels.items())
    return sum(v for (sample, have), v in samples.items() if sample == name and wanted <= have)


@pytest.fixture
async def observe(
    proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Awaitable[Observed]]]:
    for name, variable in AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, variable)
    started: list[Observed] = []

    async def start(*, record_spans: bool = True, **overrides: Any) -> Observed:
        """record_spans=False: no exporter, as in production without an OTLP endpoint."""
        settings = Settings(**{**TEST_SETTINGS, "endpoint_url": proxy.endpoint_url, **overrides})
        exporter = InMemorySpanExporter()
        telemetry = Telemetry(settings, span_exporter=exporter if record_spans else None)
        gateway = await start_gateway(settings, telemetry)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
        observed = Observed(
            gateway, exporter, channel, service_pb2_grpc.DynamoDBServiceStub(channel), aiohttp.ClientSession()
        )
        started.append(observed)
        return observed

    yield start
    for observed in started:
        await observed.channel.close()
        await observed.http.close()
        await observed.gateway.stop(0)


async def settle() -> None:
    """Lets callbacks scheduled by a finished RPC run (spans end in the handler's task)."""
    await asyncio.sleep(0)
