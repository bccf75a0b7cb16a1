"""Which attribute is a table's partition key, and where requests carry partition key values.

Span attributes (pk, sk), the partition detectors, the per-key request limits and
the batches' duplicate checks need the key schema, which requests do not carry. The
tables file's schemas are known from startup; any other table's is learnt once with
DescribeTable: in the background after a call on it succeeded (learn_soon, so
made-up table names cost nothing and no caller waits), or at once by a stage
that cannot decide without it (learn). Owns the cache and the extraction of key
values from DynamoDB request shapes; must not import gRPC or OpenTelemetry.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import request_shape
from .backends import DynamoBackend

log = logging.getLogger(__name__)

Value = dict[str, Any]


@dataclass(frozen=True)
class KeySchema:
    partition: str
    sort: str | None = None


def schema_from_description(table: dict[str, Any]) -> KeySchema | None:
    names = {entry["KeyType"]: entry["AttributeName"] for entry in table.get("KeySchema", ())}
    if "HASH" not in names:
        return None
    return KeySchema(names["HASH"], names.get("RANGE"))


class KeySchemaCache:
    """Table -> KeySchema, bounded (least recently learnt tables are forgotten first)."""

    def __init__(
        self,
        backend: DynamoBackend,
        max_tables: int = 1024,
        lookup_timeout_s: float = 2.0,
        retry_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._max_tables = max_tables
        self._lookup_timeout_s = lookup_timeout_s
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._schemas: collections.OrderedDict[str, KeySchema] = collections.OrderedDict()
        self._retry_at: dict[str, float] = {}
        # Lookups in flight, one per table, shared by every caller that asks meanwhile.
        self._lookups: dict[str, asyncio.Task[None]] = {}

    def get(self, table: str) -> KeySchema | None:
        return self._schemas.get(table)

    def remember(self, table: str, schema: KeySchema) -> None:
        self._schemas[table] = schema
        self._schemas.move_to_end(table)
        while len(self._schemas) > self._max_tables:
            self._schemas.popitem(last=False)
        self._retry_at.pop(table, None)

    def _worth_looking_up(self, table: str) -> bool:
        """Not known yet, and not failed recently."""
        return (
            bool(table)
            and table not in self._schemas
            and self._clock() >= self._retry_at.get(table, float("-inf"))
        )

    async def learn(self, table: str) -> None:
        """Looks the schema up unless known or recently failed, and waits for the answer."""
        if self._worth_looking_up(table):
            await asyncio.shield(self._lookup_of(table))

    async def schema_of(self, table: str) -> KeySchema | None:
        """The table's schema, looked up first if need be (None: unknown, or DynamoDB did not say)."""
        await self.learn(table)
        return self.get(table)

    def learn_soon(self, table: str) -> None:
        """Starts looking the schema up, unless known or recently failed; the caller does not wait."""
        if self._worth_looking_up(table):
            self._lookup_of(table)

    def _lookup_of(self, table: str) -> asyncio.Task[None]:
        """The table's lookup in flight, started now if there is none (registered at once, so the
        calls that come before it first runs share it)."""
        lookup = self._lookups.get(table)
        if lookup is None:
            # A fresh context: the lookup is the gateway's, not bound by a caller's deadline or span.
            lookup = asyncio.get_running_loop().create_task(
                self._lookup(table), name=f"key-schema:{table}", context=contextvars.Context()
            )
            self._lookups[table] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(table, None))
        return lookup

    async def _lookup(self, table: str) -> None:
        try:
            async with asyncio.timeout(self._lookup_timeout_s):
                description = await self._backend.call("DescribeTable", {"TableName": table})
            schema = schema_from_description(description.get("Table", {}))
        except (
            Exception
        ) as error:  # any failure (breaker open, deadline, denied): telemetry must not fail the call
            log.debug("no key schema for a table: %s", type(error).__name__, extra={"table": table})
            schema = None
        if schema is None:
            self._retry_at[table] = self._clock() + self._retry_after_s
            if len(self._retry_at) > self._max_tables:
                self._retry_at.pop(next(iter(self._retry_at)))
        else:
            self.remember(table, schema)

    async def settled(self) -> None:
        """Returns once no lookup is in flight (for tests that need a schema learnt first)."""
        while self._lookups:
            await asyncio.gather(*self._lookups.values(), return_exceptions=True)

    async def close(self) -> None:
        for lookup in list(self._lookups.values()):
            lookup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lookup


# `name = :value` or `:value = name` in a key condition; names may be #placeholders.
_EQUALS = re.compile(r"([#\w.]+)\s*=\s*(:\w+)|(:\w+)\s*=\s*([#\w.]+)")


def query_partition_value(params: Mapping[str, Any], schema: KeySchema) -> Value | None:
    """The partition key value a Query's KeyConditionExpression names, if it can be found."""
    expression = params.get("KeyConditionExpression", "")
    names = params.get("ExpressionAttributeNames", {})
    values: Mapping[str, Value] = params.get("ExpressionAttributeValues", {})
    partition = schema.partition
    if "IndexName" in params:
        return None  # an index has its own key schema, which the table's does not tell
    for match in _EQUALS.finditer(expression):
        name, placeholder = (match.group(1), match.group(2)) if match.group(1) else match.group(4, 3)
        if names.get(name, name) == partition and placeholder in values:
            return values[placeholder]
    return None


class KeyUse(NamedTuple):
    """One partition key value a request touches (a named tuple: requests make them on every call)."""

    table: str
    partition: Value
    sort: Value | None
    is_write: bool


def key_uses(
    operation: str, params: dict[str, Any], schemas: Callable[[str], KeySchema | None]
) -> Iterator[KeyUse]:
    """Every (table, partition key) a request reads or writes, where the schema is known."""
    for part in request_shape.walk(operation, params):
        if part.kind == request_shape.TABLE:
            # A table part carries a key only as a Query's key condition.
            if operation == "Query" and (schema := schemas(part.table)) is not None:
                value = query_partition_value(part.value, schema)
                if value is not None:
                    yield KeyUse(part.table, value, None, False)
            continue
        schema = schemas(part.table)
        if schema is not None and schema.partition in part.value:
            sort = part.value.get(schema.sort) if schema.sort else None
            yield KeyUse(part.table, part.value[schema.partition], sort, part.writes)
