"""Emulated AWS regions for multi-region tests: one emulator per region, a FaultProxy before each.

A gateway talks to a region through its proxy (`Regions.endpoints()`), so tests can count
its traffic and take a region down. The Replicator plays DynamoDB global tables: after a
write the proxy forwarded and the emulator accepted, it waits `delay_s`, then copies the
current state of every key the write touched to the other regions' emulators. It goes
around their proxies, as AWS's own replication does not pass through a client's path: it
is not counted as gateway traffic and still lands while a region's proxy is down.

Conflicts resolve as last writer wins: each (region, table, key) remembers the stamp of
the write its state comes from (stamps grow in the order the proxies saw writes
answered), and a copy never replaces a newer state with an older one. Writes made
directly (Regions.put, a region's backend) are neither replicated nor stamped.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynamo_gateway_server.backends.aws import AwsBackend
from dynamo_gateway_server.backends.memory import MotoServerProcess
from dynamo_gateway_server.tables import TableSpec, create_table_params
from tests.support.backends import aws_backend_for
from tests.support.emulators import DynaliteProcess, FaultProxy

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "DescribeTable"})
_TABLE_ACTIVE_TIMEOUT_S = 10.0

# (table, key as canonical JSON): one item, whatever region holds it.
_ItemId = tuple[str, str]


def _from_wire(value: Mapping[str, Any]) -> dict[str, Any]:
    """Key attributes from a request body (binary as base64) as the backend takes them (bytes)."""
    return {name: {"B": base64.b64decode(v["B"])} if "B" in v else dict(v) for name, v in value.items()}


def _keys_written(operation: str, request: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(table, "Key" or "Item", attributes) for every item a write request changes.

    "Item" means a whole item whose key attributes still have to be picked out of it.
    """
    if operation in ("UpdateItem", "DeleteItem"):
        return [(request["TableName"], "Key", request["Key"])]
    if operation == "PutItem":
        return [(request["TableName"], "Item", request["Item"])]
    written = []
    if operation == "BatchWriteItem":
        for table, writes in request.get("RequestItems", {}).items():
            for write in writes:
                if "PutRequest" in write:
                    written.append((table, "Item", write["PutRequest"]["Item"]))
                elif "DeleteRequest" in write:
                    written.append((table, "Key", write["DeleteRequest"]["Key"]))
    elif operation == "TransactWriteItems":
        for action in request.get("TransactItems", ()):
            if "Put" in action:
                written.append((action["Put"]["TableName"], "Item", action["Put"]["Item"]))
            for kind in ("Update", "Delete"):  # ConditionCheck writes nothing
                if kind in action:
                    written.append((action[kind]["TableName"], "Key", action[kind]["Key"]))
    return written


class Replicator:
    """Copies each region's accepted writes to every other region, `delay_s` later (see the module)."""

    def __init__(self, backends: Mapping[str, AwsBackend], delay_s: float = 0.2) -> None:
        self.backends = dict(backends)
        # Read when a write is seen: a change applies to the writes after it.
        self.delay_s = delay_s
        # Target region -> items written there by replication (puts and deletes).
        self.copied: collections.Counter[str] = collections.Counter()
        # repr of each failed copy; a failure never reaches the proxy or the gateway behind it.
        self.errors: list[str] = []
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stamp = itertools.count(1)
        # (region, table, key) -> stamp of the write that region's state of the item comes from.
        self._stamps: dict[tuple[str, str, str], int] = {}
        # One copy of an item at a time, so an older read never lands after a newer one.
        self._locks: dict[_ItemId, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._key_names: dict[str, tuple[str, ...]] = {}

    @property
    def paused(self) -> bool:
        """While True, writes are still recorded but nothing is copied (their copies wait)."""
        return not self._unpaused.is_set()

    @paused.setter
    def paused(self, paused: bool) -> None:
        if paused:
            self._unpaused.clear()
        else:
            self._unpaused.set()

    @property
    def pending(self) -> int:
        """Items written but not yet copied (one per key a write touched)."""
        return self._pending

    def _count_pending(self, delta: int) -> None:
        self._pending += delta
        if self._pending:
            self._idle.clear()
        else:
            self._idle.set()

    def know_table(self, spec: TableSpec) -> None:
        """Records a table's key attributes, sparing a DescribeTable on its first PutItem."""
        self._key_names[spec.name] = tuple(k for k in (spec.partition_key, spec.sort_key) if k)

    def hook(self, region: str) -> Callable[[str, bytes], None]:
        """The FaultProxy.on_forwarded callback of `region`'s proxy."""

        def on_forwarded(operation: str, body: bytes) -> None:
            if operation in WRITE_OPERATIONS:
                self.write_seen(region, operation, body)

        return on_forwarded

    def write_seen(self, region: str, operation: str, body: bytes) -> None:
        """Schedules the copies of a write `region` accepted (a request body, DynamoDB's JSON)."""
        try:
            written = _keys_written(operation, json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self.errors.append(f"{region} {operation}: unreadable request: {error!r}")
            return
        if not written:
            return
        stamp = next(self._stamp)
        self._count_pending(len(written))
        task = asyncio.get_running_loop().create_task(self._replicate(region, stamp, written))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replicate(
        self, source: str, stamp: int, written: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        due = asyncio.get_running_loop().time() + self.delay_s
        items: list[tuple[_ItemId, dict[str, Any]]] = []
        # Stamped now, not when copied: a copy must already know of a newer write it would undo.
        for table, shape, attributes in written:
            try:
                item_id, key = await self._item_of(source, table, shape, attributes)
            except Exception as error:
                self.errors.append(f"{source} {table} {attributes}: {error!r}")
                self._count_pending(-1)
                continue
            self._stamp_at(source, item_id, stamp)
            items.append((item_id, key))
        await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        await self._unpaused.wait()
        for item_id, key in items:
            try:
                await self._copy(source, item_id, key)
            except Exception as error:
                self.errors.append(f"{source} {item_id}: {error!r}")
            finally:
                self._count_pending(-1)

    async def _item_of(
        self, region: str, table: str, shape: str, attributes: dict[str, Any]
    ) -> tuple[_ItemId, dict[str, Any]]:
        """The item's id, and its key as the backend takes it; a whole item is cut down to its key."""
        if shape == "Item":
            attributes = {name: attributes[name] for name in await self._key_names_of(region, table)}
        return (table, json.dumps(attributes, sort_keys=True)), _from_wire(attributes)

    def _stamp_at(self, region: str, item_id: _ItemId, stamp: int) -> None:
        where = (region, *item_id)
        self._stamps[where] = max(self._stamps.get(where, 0), stamp)

    async def _key_names_of(self, region: str, table: str) -> tuple[str, ...]:
        if table not in self._key_names:
            described = await self.backends[region].call("DescribeTable", {"TableName": table})
            self._key_names[table] = tuple(k["AttributeName"] for k in described["Table"]["KeySchema"])
        return self._key_names[table]

    async def _copy(self, source: str, item_id: _ItemId, key: dict[str, Any]) -> None:
        table, key_json = item_id
        async with self._locks[item_id]:
            stamp = self._stamps.get((source, table, key_json), 0)
            answer = await self.backends[source].call(
                "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}
            )
            item = answer.get("Item")
            targets = [
                region
                for region in self.backends
                if region != source and self._stamps.get((region, table, key_json), 0) <= stamp
            ]

            async def write(region: str) -> None:
                if item is None:
                    await self.backends[region].call("DeleteItem", {"TableName": table, "Key": key})
                else:
                    await self.backends[region].call("PutItem", {"TableName": table, "Item": item})
                self._stamp_at(region, item_id, stamp)
                self.copied[region] += 1

            outcomes = await asyncio.gather(*map(write, targets), return_exceptions=True)
            for region, outcome in zip(targets, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    self.errors.append(f"{source} -> {region} {table} {key_json}: {outcome!r}")

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Returns once nothing is pending; TimeoutError after `timeout_s` (so while paused, if any is)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            paused = " (replication is paused)" if self.paused else ""
            raise TimeoutError(
                f"{self.pending} replica copies still pending after {timeout_s} s{paused}"
            ) from None

    async def close(self) -> None:
        """Cancels the copies not done yet."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class EmulatedRegion:
    """One region: its emulator, the proxy a gateway uses, and a backend straight to the emulator.

    moto keeps its tables per signing region: a client of this region must sign with
    `name` (aws_backend_for(url, region=name)), or it sees none of them.
    """

    name: str
    emulator_url: str
    proxy: FaultProxy
    # Started, and pointed at emulator_url (not the proxy): setup and checks are not gateway traffic.
    backend: AwsBackend
    process: MotoServerProcess | DynaliteProcess


class Regions:
    """The regions of emulated_regions(), by name, and what tests do to all of them.

    Items and keys are AttributeValue maps as the backend takes and answers them,
    e.g. {"pk": {"S": "a"}} (binary values as bytes).
    """

    def __init__(self, regions: Mapping[str, EmulatedRegion], replicator: Replicator) -> None:
        self._regions = dict(regions)
        self.replicator = replicator

    def __getitem__(self, name: str) -> EmulatedRegion:
        return self._regions[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._regions)

    def endpoints(self) -> dict[str, str]:
        """Region name -> its proxy's endpoint URL: what a gateway is pointed at."""
        return {name: region.proxy.endpoint_url for name, region in self._regions.items()}

    async def create_table(self, spec: TableSpec) -> str:
        """Creates the table in every region (directly) and returns its name once it is ACTIVE everywhere."""
        self.replicator.know_table(spec)
        await asyncio.gather(*(_create_table(region.backend, spec) for region in self._regions.values()))
        return spec.name

    async def read(self, name: str, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item as region `name` holds it now (a consistent read around the proxy), or None."""
        answer = await self[name].backend.call(
            "GetItem", {"TableName": table, "Key": dict(key), "ConsistentRead": True}
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    async def put(self, name: str, table: str, item: Mapping[str, Any]) -> None:
        """Writes the item in region `name` only, around its proxy: not replicated."""
        await self[name].backend.call("PutItem", {"TableName": table, "Item": dict(item)})

    def writes_seen(self, name: str) -> collections.Counter[str]:
        """Write operation -> requests region `name`'s proxy received (whatever it answered)."""
        return self._seen(name, WRITE_OPERATIONS)

    def reads_seen(self, name: str) -> collections.Counter[str]:
        """Read operation (DescribeTable included) -> requests region `name`'s proxy received."""
        return self._seen(name, READ_OPERATIONS)

    def _seen(self, name: str, operations: frozenset[str]) -> collections.Counter[str]:
        seen: collections.Counter[str] = collections.Counter()
        for (operation, _table), count in self[name].proxy.requests.items():
            if operation in operations:
                seen[operation] += count
        return seen

    def reset_counts(self) -> None:
        """Forgets the requests every proxy saw and the replicator's copies."""
        for region in self._regions.values():
            region.proxy.requests.clear()
        self.replicator.copied.clear()


async def _create_table(backend: AwsBackend, spec: TableSpec) -> None:
    await backend.call("CreateTable", create_table_params(spec))
    try:
        async with asyncio.timeout(_TABLE_ACTIVE_TIMEOUT_S):
            # moto creates tables ACTIVE and dynalite runs with --createTableMs 0: no pause needed.
            while True:
                described = await backend.call("DescribeTable", {"TableName": spec.name})
                if described["Table"]["TableStatus"] == "ACTIVE":
                    return
    except TimeoutError:
        raise AssertionError(f"table {spec.name} never became ACTIVE") from None


async def _start_region(kind: str, name: str, stack: contextlib.AsyncExitStack) -> EmulatedRegion:
    """Starts one region, registering each part's stop on `stack` as soon as it exists."""
    process: MotoServerProcess | DynaliteProcess
    if kind == "moto":
        process = await MotoServerProcess.start()
        stack.push_async_callback(process.stop)
    else:
        process = DynaliteProcess()
        await process.start()  # stops what it started when it fails
        stack.push_async_callback(process.stop)
    proxy = FaultProxy(process.endpoint_url)
    stack.push_async_callback(proxy.stop)  # safe on a proxy whose start() failed half-way
    await proxy.start()
    backend = await aws_backend_for(process.endpoint_url, region=name)
    stack.push_async_callback(backend.close)
    return EmulatedRegion(name, process.endpoint_url, proxy, backend, process)


@contextlib.asynccontextmanager
async def emulated_regions(
    kind: str, names: Sequence[str], *, replication_delay_s: float = 0.2
) -> AsyncIterator[Regions]:
    """Regions `names`, each its own `kind` emulator ("moto" or "dynalite") behind a FaultProxy,
    replicated into each other; all started concurrently, all stopped on exit."""
    if kind not in ("moto", "dynalite"):
        raise ValueError(f"unknown emulator kind {kind!r}: expected 'moto' or 'dynalite'")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"region names must be distinct and at least one: {list(names)}")
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.TaskGroup() as group:
            starting = [group.create_task(_start_region(kind, name, stack)) for name in names]
        regions = {task.result().name: task.result() for task in starting}
        replicator = Replicator(
            {name: region.backend for name, region in regions.items()}, replication_delay_s
        )
        stack.push_async_callback(replicator.close)  # first out: no copy outlives the backends
        for name, region in regions.items():
            region.proxy.on_forwarded = replicator.hook(name)
        yield Regions(regions, replicator)
