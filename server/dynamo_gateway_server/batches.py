"""Batches larger than DynamoDB's: split, run with bounded concurrency, retry leftovers, report the rest.

BatchWriteItem takes 25 writes and BatchGetItem 100 keys per call; an RPC may carry
up to `max_items`. Each entry keeps its position (table, index) so that what is
still unprocessed when retries or the deadline run out goes back to the caller as
data, entry by entry. Duplicate keys are refused up front, naming both entries (and carrying
DynamoDB's own words for the refusal, as the batch limit does: dynamo_gateway.dynamodb_messages).
Works on DynamoDB's parameter shapes through the backend seam; must not import gRPC.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dynamo_gateway import dynamodb_messages as messages
from dynamo_gateway.taxonomy import BY_REASON, Leaf

from . import request_shape
from .backends import BackendError, BackendUnavailableError, DynamoBackend
from .codec import InvalidRequestError
from .failures import is_retryable, leaf_of
from .key_schema import KeySchemaCache
from .resilience import Backoff, current_deadline

WRITES_PER_CALL = 25
KEYS_PER_CALL = 100
# DynamoDB's cap on a BatchGetItem response; we stop reading more once the merged one reaches it.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_LEFT_BY_DYNAMODB = BY_REASON["Throughput.ProvisionedThroughputExceeded"]
_LEFT_FOR_SIZE = BY_REASON["Throughput.RequestLimitExceeded"]


@dataclass(frozen=True)
class Unprocessed:
    """An entry of the request that is still unprocessed, and why."""

    table: str
    index: int
    leaf: Leaf
    message: str


@dataclass
class BatchResult:
    response: dict[str, Any]
    unprocessed: list[Unprocessed] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    table: str
    index: int
    wire: Mapping[str, Any]
    """What is sent: the write request, or the key."""
    keyed: Mapping[str, Any]
    """The item or key that holds the entry's primary key."""


def _entries(operation: str, params: dict[str, Any]) -> list[_Entry]:
    """Every write or key of a batch, with its place in the request (request_shape's walk)."""
    per_table = params["RequestItems"]
    return [
        _Entry(
            part.table,
            part.position,
            per_table[part.table][part.position] if operation == "BatchWriteItem" else part.value,
            part.value,
        )
        for part in request_shape.walk(operation, params)
        if part.position >= 0
    ]


def _canonical(value: Any) -> str:
    """A stable text of a DynamoDB value, to recognise the entries DynamoDB hands back."""

    def encode(obj: Any) -> Any:
        if isinstance(obj, bytes | bytearray):
            return {"__b": base64.b64encode(bytes(obj)).decode()}
        raise TypeError(type(obj).__name__)

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=encode).decode()


class BatchRunner:
    def __init__(
        self,
        backend: DynamoBackend,
        key_schemas: KeySchemaCache,
        *,
        max_items: int,
        concurrency: int,
        leftovers: Backoff,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._max_items = max_items
        self._concurrency = concurrency
        self._leftovers = leftovers
        self._sleep = sleep
        self._rand = rand or random.random
        self._clock = clock
        # The gateway's shared cache: a table's key is looked up once for every stage.
        self.key_schemas = key_schemas

    # ------------------------------------------------------------ BatchWriteItem

    async def write(self, params: dict[str, Any]) -> BatchResult:
        entries = _entries("BatchWriteItem", params)
        self._check_count(len(entries), "writes", "BatchWriteItem")
        await self._refuse_duplicates(entries, "requests")
        options = {k: v for k, v in params.items() if k != "RequestItems"}
        result = BatchResult({"UnprocessedItems": {}, "ConsumedCapacity": [], "ItemCollectionMetrics": {}})

        async def run(chunk: list[_Entry]) -> None:
            left = await self._until_processed(
                chunk,
                lambda part: {"RequestItems": _group(part), **options},
                "BatchWriteItem",
                "UnprocessedItems",
                result.response,
            )
            result.unprocessed.extend(left)

        await self._run_chunks(_chunks(entries, WRITES_PER_CALL), run)
        for entry in result.unprocessed:
            result.response["UnprocessedItems"].setdefault(entry.table, []).append(
                params["RequestItems"][entry.table][entry.index]
            )
        return result

    # ------------------------------------------------------------ BatchGetItem

    async def get(self, params: dict[str, Any]) -> BatchResult:
        per_table = params["RequestItems"]
        entries = _entries("BatchGetItem", params)
        self._check_count(len(entries), "keys", "BatchGetItem")
        await self._refuse_duplicates(entries, "keys")
        options = {k: v for k, v in params.items() if k != "RequestItems"}
        result = BatchResult({"Responses": {}, "UnprocessedKeys": {}, "ConsumedCapacity": []})
        size = 0

        def request_for(part: list[_Entry]) -> dict[str, Any]:
            grouped: dict[str, Any] = {}
            for entry in part:
                spec = grouped.setdefault(entry.table, {**per_table[entry.table], "Keys": []})
                spec["Keys"].append(entry.wire)
            return {"RequestItems": grouped, **options}

        async def run(chunk: list[_Entry]) -> None:
            nonlocal size
            if size >= MAX_RESPONSE_BYTES:
                message = "the response reached DynamoDB's 16 MB limit; ask for these keys again"
                result.unprocessed.extend(
                    Unprocessed(e.table, e.index, _LEFT_FOR_SIZE, message) for e in chunk
                )
                return
            before = _response_size(result.response)
            left = await self._until_processed(
                chunk, request_for, "BatchGetItem", "UnprocessedKeys", result.response
            )
            size += _response_size(result.response) - before
            result.unprocessed.extend(left)

        await self._run_chunks(_chunks(entries, KEYS_PER_CALL), run)
        for entry in result.unprocessed:
            spec = result.response["UnprocessedKeys"].setdefault(
                entry.table, {**per_table[entry.table], "Keys": []}
            )
            spec["Keys"].append(per_table[entry.table]["Keys"][entry.index])
        return result

    # ------------------------------------------------------------ shared

    def _check_count(self, count: int, what: str, operation: str) -> None:
        if count > self._max_items:
            # This gateway's limit, not DynamoDB's (which is lower); DynamoDB's words for refusing it.
            raise InvalidRequestError(
                "request_items",
                f"{count} {what} is more than this gateway's batch limit of {self._max_items}",
                dynamodb_message=messages.too_many_requested(operation),
            )

    async def _refuse_duplicates(self, entries: list[_Entry], list_name: str) -> None:
        seen: dict[tuple[str, str], int] = {}
        for entry in entries:
            schema = await self.key_schemas.schema_of(entry.table)
            if schema is None:
                continue  # DynamoDB will say what is wrong with this table
            names = (schema.partition,) if schema.sort is None else (schema.partition, schema.sort)
            key = _project(entry.keyed, names)
            if key is None:
                continue
            identity = (entry.table, _canonical(key))
            if identity in seen:
                raise InvalidRequestError(
                    f"request_items[{entry.table}].{list_name}[{entry.index}]",
                    f"{messages.DUPLICATE_KEYS}: this entry has the same key as {list_name}[{seen[identity]}]"
                    f" ({_canonical(key)})",
                    dynamodb_message=messages.DUPLICATE_KEYS,
                )
            seen[identity] = entry.index

    async def _run_chunks(
        self, chunks: Iterable[list[_Entry]], run: Callable[[list[_Entry]], Awaitable[None]]
    ) -> None:
        gate = asyncio.Semaphore(self._concurrency)

        async def gated(chunk: list[_Entry]) -> None:
            async with gate:
                await run(chunk)

        try:
            async with asyncio.TaskGroup() as group:
                for chunk in chunks:
                    group.create_task(gated(chunk))
        except ExceptionGroup as failed:
            # One chunk met an error that makes the whole request wrong; report that error itself.
            raise failed.exceptions[0] from None

    async def _until_processed(
        self,
        chunk: list[_Entry],
        request_for: Callable[[list[_Entry]], dict[str, Any]],
        operation: str,
        leftover_field: str,
        merged: dict[str, Any],
    ) -> list[Unprocessed]:
        """Sends the chunk, then what DynamoDB left of it, with backoff, while attempts and time remain."""
        pending = chunk
        deadline = current_deadline()
        for attempt in range(1, self._leftovers.attempts + 1):
            try:
                response = await self._backend.call(operation, request_for(pending))
            except (BackendError, BackendUnavailableError) as error:
                if not is_retryable(error):
                    raise  # the request itself is wrong: the whole RPC says so
                # The retry layer already tried this call; what is left is left.
                leaf = leaf_of(error)
                return [Unprocessed(e.table, e.index, leaf, str(error)) for e in pending]
            _merge(merged, response, operation)
            pending = _still_pending(pending, response.get(leftover_field, {}), operation)
            if not pending:
                return []
            delay = self._leftovers.delay_s(attempt, self._rand)
            if deadline is not None and self._clock() + delay >= deadline:
                break
            await self._sleep(delay)
        message = "DynamoDB left this entry unprocessed (throughput); send it again later"
        return [Unprocessed(e.table, e.index, _LEFT_BY_DYNAMODB, message) for e in pending]


def _chunks(entries: list[_Entry], size: int) -> Iterable[list[_Entry]]:
    for start in range(0, len(entries), size):
        yield entries[start : start + size]


def _group(entries: list[_Entry]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        grouped.setdefault(entry.table, []).append(entry.wire)
    return grouped


def _project(item: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    if not all(name in item for name in names):
        return None  # a key without all its parts: DynamoDB will name the problem
    return {name: item[name] for name in names}


def _still_pending(sent: list[_Entry], leftovers: dict[str, Any], operation: str) -> list[_Entry]:
    if not any(leftovers.values()):
        return []  # the usual answer: everything processed, nothing to match up
    left: set[tuple[str, str]] = set()
    for table, value in leftovers.items():
        members = value["Keys"] if operation == "BatchGetItem" else value
        left.update((table, _canonical(member)) for member in members)
    return [entry for entry in sent if (entry.table, _canonical(entry.wire)) in left]


def _merge(merged: dict[str, Any], response: dict[str, Any], operation: str) -> None:
    if operation == "BatchGetItem":
        for table, items in response.get("Responses", {}).items():
            merged["Responses"].setdefault(table, []).extend(items)
    else:
        for table, metrics in response.get("ItemCollectionMetrics", {}).items():
            merged["ItemCollectionMetrics"].setdefault(table, []).extend(metrics)
    for capacity in response.get("ConsumedCapacity", ()):
        _add_capacity(merged["ConsumedCapacity"], capacity)


def _add_capacity(totals: list[dict[str, Any]], capacity: dict[str, Any]) -> None:
    """One ConsumedCapacity entry per table, summed over the calls."""
    for total in totals:
        if total.get("TableName") == capacity.get("TableName"):
            for unit in ("CapacityUnits", "ReadCapacityUnits", "WriteCapacityUnits"):
                if unit in capacity:
                    total[unit] = total.get(unit, 0.0) + capacity[unit]
            return
    totals.append({k: v for k, v in capacity.items() if not isinstance(v, dict)})


def _response_size(response: dict[str, Any]) -> int:
    """Roughly the bytes of the items read so far (DynamoDB counts names and values)."""
    return sum(_value_size(item) for items in response.get("Responses", {}).values() for item in items)


def _value_size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(k) + _value_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_value_size(v) for v in value)
    if isinstance(value, str | bytes):
        return len(value)
    return 8
