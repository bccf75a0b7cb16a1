"""Which attribute is a table's partition key, and where requests carry partition key values.

Span attributes (pk, sk), the partition detectors, the per-key request limits and
the batches' leftover matching need the key schema, which requests do not carry. It is learnt once per table with DescribeTable, and only
after a call on that table succeeded, so made-up table names cost nothing. Owns the
cache and the extraction of key values from DynamoDB request shapes; must not
import gRPC or OpenTelemetry.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

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
        self._lookups: dict[str, asyncio.Future[None]] = {}

    def get(self, table: str) -> KeySchema | None:
        return self._schemas.get(table)

    def remember(self, table: str, schema: KeySchema) -> None:
        self._schemas[table] = schema
        self._schemas.move_to_end(table)
        while len(self._schemas) > self._max_tables:
            self._schemas.popitem(last=False)
        self._retry_at.pop(table, None)

    async def learn(self, table: str) -> None:
        """Looks the schema up unless known or recently failed; concurrent callers share one lookup."""
        if not table or table in self._schemas or self._clock() < self._retry_at.get(table, float("-inf")):
            return
        lookup = self._lookups.get(table)
        if lookup is None:
            lookup = self._lookups[table] = asyncio.ensure_future(self._lookup(table))
            lookup.add_done_callback(lambda _: self._lookups.pop(table, None))
        await asyncio.shield(lookup)

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

    async def close(self) -> None:
        for lookup in list(self._lookups.values()):
            lookup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lookup


def shared_key_schemas(backend: DynamoBackend) -> KeySchemaCache | None:
    """The instrumented backend's cache when backend is one, so every user looks a table up once."""
    shared = getattr(backend, "schemas", None)
    return shared if isinstance(shared, KeySchemaCache) else None


# `name = :value` or `:value = name` in a key condition; names may be #placeholders.
_EQUALS = re.compile(r"([#\w.]+)\s*=\s*(:\w+)|(:\w+)\s*=\s*([#\w.]+)")


def query_partition_value(params: dict[str, Any], schema: KeySchema) -> Value | None:
    """The partition key value a Query's KeyConditionExpression names, if it can be found."""
    expression = params.get("KeyConditionExpression", "")
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
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


def _from_item(table: str, item: Value, schema: KeySchema | None, is_write: bool) -> Iterator[KeyUse]:
    if schema is not None and schema.partition in item:
        sort = item.get(schema.sort) if schema.sort else None
        yield KeyUse(table, item[schema.partition], sort, is_write)


def key_uses(
    operation: str, params: dict[str, Any], schemas: Callable[[str], KeySchema | None]
) -> Iterator[KeyUse]:
    """Every (table, partition key) a request reads or writes, where the schema is known."""
    table = params.get("TableName", "")
    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        yield from _from_item(table, params.get("Key", {}), schemas(table), operation != "GetItem")
    elif operation == "PutItem":
        yield from _from_item(table, params.get("Item", {}), schemas(table), True)
    elif operation == "Query":
        schema = schemas(table)
        value = query_partition_value(params, schema) if schema else None
        if value is not None:
            yield KeyUse(table, value, None, False)
    elif operation == "BatchGetItem":
        for name, request in params.get("RequestItems", {}).items():
            for key in request.get("Keys", ()):
                yield from _from_item(name, key, schemas(name), False)
    elif operation == "BatchWriteItem":
        for name, writes in params.get("RequestItems", {}).items():
            for write in writes:
                if "PutRequest" in write:
                    yield from _from_item(name, write["PutRequest"].get("Item", {}), schemas(name), True)
                elif "DeleteRequest" in write:
                    yield from _from_item(name, write["DeleteRequest"].get("Key", {}), schemas(name), True)
    elif operation in ("TransactGetItems", "TransactWriteItems"):
        for entry in params.get("TransactItems", ()):
            for kind, action in entry.items():
                name = action.get("TableName", "")
                item = action.get("Item") if kind == "Put" else action.get("Key", {})
                yield from _from_item(name, item or {}, schemas(name), kind in ("Put", "Update", "Delete"))
