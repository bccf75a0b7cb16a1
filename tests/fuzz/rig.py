"""The fuzzers' target: a real gateway on a loopback port, in front of an emulator, with tables to aim at.

Shared by tests/fuzz and bench/fuzz.py. The gateway is built as app.py builds it (every
stage, the real gRPC server), with the aws backend pointed at moto's server mode (what
the memory backend runs) or at dynalite. Its tables cover the shapes the request path
branches on: a sort key or none, string or number/binary keys, indexes, a declared TTL
and versioned writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.backends import BackendError, BackendUnavailableError, DynamoBackend
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import IndexSpec, TableSpec, VersionSpec, create_tables
from tests.support.backends import aws_backend_for, no_sleep
from tests.support.emulators import DynaliteProcess

FUZZ_TABLES = (
    TableSpec(
        name="fuzz-app",
        attributes={"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "created_at": "N"},
        partition_key="pk",
        sort_key="sk",
        global_indexes=(IndexSpec("gsi1", "gsi1pk", "gsi1sk", "ALL"),),
        local_indexes=(IndexSpec("lsi1", "pk", "created_at", "KEYS_ONLY"),),
        ttl_attribute="expires_at",
        version=VersionSpec("version"),
    ),
    TableSpec(name="fuzz-plain", attributes={"pk": "S", "sk": "S"}, partition_key="pk", sort_key="sk"),
    TableSpec(name="fuzz-hash", attributes={"pk": "S"}, partition_key="pk"),
    TableSpec(name="fuzz-typed", attributes={"pk": "N", "sk": "B"}, partition_key="pk", sort_key="sk"),
)
TABLE_NAMES = tuple(spec.name for spec in FUZZ_TABLES)
INDEX_NAMES = ("gsi1", "lsi1")
# Key attributes first: most generated names are these, so many requests name a real key.
KEY_ATTRIBUTES = ("pk", "sk")
OTHER_ATTRIBUTES = ("gsi1pk", "gsi1sk", "created_at", "expires_at", "version", "data", "tags")

# Generous: a call that runs into it has hung (the gateway answers in time even when the backend does not).
CALL_DEADLINE_S = 10.0
# The gateway gives up on a silent emulator well before the caller's deadline.
BACKEND_READ_TIMEOUT_S = 3.0
# Creating the tables on a busy machine may outlast the read timeout once or twice.
CREATE_ATTEMPTS = 3
# How long a live dynalite may take to describe a table before it counts as hung.
DYNALITE_PROBE_TIMEOUT_S = 2.0


async def create_fuzz_tables(backend: DynamoBackend) -> None:
    """Creates the tables (again, after an emulator restart) and waits until each is ACTIVE.

    Without DynamoDB's TTL setting (dynalite has no UpdateTimeToLive): the gateway's declared TTL
    rules, which are what requests meet, hold all the same.
    """
    specs = [dataclasses.replace(spec, ttl_attribute=None) for spec in FUZZ_TABLES]
    for attempt in range(CREATE_ATTEMPTS):
        try:
            await create_tables(backend, specs)  # leaves the tables that exist as they are
            break
        except BackendUnavailableError:  # a busy machine: the emulator took its time
            if attempt == CREATE_ATTEMPTS - 1:
                raise
    async with asyncio.timeout(10):
        for name in TABLE_NAMES:
            while True:
                try:
                    described = await backend.call("DescribeTable", {"TableName": name})
                except BackendError:
                    described = {}
                if described.get("Table", {}).get("TableStatus") == "ACTIVE":
                    break
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def fuzz_gateway(endpoint_url: str) -> AsyncIterator[Gateway]:
    """A started gateway in front of `endpoint_url` whose tables file declares FUZZ_TABLES, all created."""
    backend = await aws_backend_for(endpoint_url, read_timeout_s=BACKEND_READ_TIMEOUT_S)
    gateway = Gateway(
        # The breaker would turn a run of emulator failures into fast refusals and hide the rest.
        Settings(port=0, backend="aws", grace_period_s=0, breaker_failure_threshold=10**9),
        backend,
        endpoint=endpoint_url,
        clocks=Clocks(sleep=no_sleep),
        declared_tables=FUZZ_TABLES,
        created_tables=set(TABLE_NAMES),
    )
    await create_fuzz_tables(backend)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop(0)


@dataclass
class DynaliteKeeper:
    """Brings dynalite back, with the fuzz tables, when it died or hung on an input (its weakness, not
    the gateway's: the gateway must still have answered in time, which the oracle checked)."""

    process: DynaliteProcess
    backend: DynamoBackend
    restarts: int = 0

    async def revive_if_needed(self) -> None:
        if self.process.process is not None and self.process.process.returncode is None:
            try:
                async with asyncio.timeout(DYNALITE_PROBE_TIMEOUT_S):
                    await self.backend.call("DescribeTable", {"TableName": TABLE_NAMES[0]})
                return
            except (TimeoutError, BackendError, BackendUnavailableError, OSError):
                await self.process.stop()  # hung (or answering nonsense): start afresh
        await self.process.ensure_running()
        self.restarts += 1
        await create_fuzz_tables(self.backend)
