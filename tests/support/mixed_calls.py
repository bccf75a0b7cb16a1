"""Mixed calls through a gateway, the paths that end early included, for soak checks.

Shared by tests/e2e/test_soak.py (every call) and bench/soak.py (the calls its gRPC load
generator cannot make: cancelled ones and channels closed mid-call). Kinds of call are
dealt from a weighted, shuffled deck: each operation of the API, requests that fail
validation, deadlines too short to meet, calls and ParallelScan streams the caller
cancels. The channel is replaced every `calls_per_channel` calls and the old one closed
at once, cancelling whatever is still in flight on it. Returns how each kind ended (its
gRPC status); asserts nothing.

The table is "bench" with keys pk and sk, as bench/stub_dynamodb.py describes any table.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc, value_pb2

TABLE = "bench"
DEADLINE_S = 30.0  # of the calls not meant to run out of time
PARALLEL_SCAN = "ParallelScan"
INVALID = "invalid"
SHORT_DEADLINE = "short deadline"
CANCELLED = "cancelled"
SCAN_CANCELLED = "scan cancelled"

# The calls of a service under ordinary use, and a few of each way to end early. Reads of many
# items are rarer: a Query of the stub's 100 items costs the gateway ten GetItems.
WEIGHTS: Mapping[str, int] = {
    "GetItem": 30,
    "PutItem": 18,
    "UpdateItem": 10,
    "DeleteItem": 5,
    "Query": 2,
    "BatchGetItem": 5,
    "BatchWriteItem": 5,
    PARALLEL_SCAN: 1,
    INVALID: 8,
    SHORT_DEADLINE: 6,
    CANCELLED: 8,
    SCAN_CANCELLED: 2,
}

# Statuses each kind may end with; channel closes can cancel any of them.
EXPECTED: Mapping[str, frozenset[str]] = {
    **{kind: frozenset({"OK", "CANCELLED"}) for kind in WEIGHTS},
    INVALID: frozenset({"INVALID_ARGUMENT", "CANCELLED"}),
    SHORT_DEADLINE: frozenset({"OK", "DEADLINE_EXCEEDED", "CANCELLED"}),
}


def _s(text: str) -> value_pb2.AttributeValue:
    return value_pb2.AttributeValue(s=text)


def _key(n: int) -> dict[str, value_pb2.AttributeValue]:
    # Many partition keys, as real traffic has: per-key state must stay bounded.
    return {"pk": _s(f"user#{n}"), "sk": _s(f"order#{n % 100:08d}")}


def _item(n: int) -> dict[str, value_pb2.AttributeValue]:
    return {**_key(n), "status": _s("shipped"), "note": _s("x" * 64)}


def _get(n: int) -> Any:
    return service_pb2.GetItemRequest(table_name=TABLE, key=_key(n))


def _put(n: int) -> Any:
    return service_pb2.PutItemRequest(table_name=TABLE, item=_item(n))


def _update(n: int) -> Any:
    return service_pb2.UpdateItemRequest(
        table_name=TABLE,
        key=_key(n),
        update_expression="SET #s = :s",
        expression_attribute_names={"#s": "status"},
        expression_attribute_values={":s": _s("returned")},
    )


def _delete(n: int) -> Any:
    return service_pb2.DeleteItemRequest(table_name=TABLE, key=_key(n))


def _query(n: int) -> Any:
    return service_pb2.QueryRequest(
        table_name=TABLE,
        key_condition_expression="pk = :pk",
        expression_attribute_values={":pk": _s(f"user#{n}")},
    )


def _batch_get(n: int) -> Any:
    keys = [value_pb2.Item(attributes=_key(n + i)) for i in range(10)]
    return service_pb2.BatchGetItemRequest(request_items={TABLE: service_pb2.KeysAndAttributes(keys=keys)})


def _batch_write(n: int) -> Any:
    writes = [
        service_pb2.WriteRequest(put_request=service_pb2.PutRequest(item=_item(n + i))) for i in range(25)
    ]
    return service_pb2.BatchWriteItemRequest(
        request_items={TABLE: service_pb2.WriteRequestList(requests=writes)}
    )


def _scan(n: int) -> Any:
    return service_pb2.ParallelScanRequest(table_name=TABLE, total_segments=2 + n % 3)


def _invalid(n: int) -> tuple[str, Any]:
    """A request the gateway refuses before DynamoDB sees it, a different refusal each time."""
    return [
        ("GetItem", service_pb2.GetItemRequest(table_name=TABLE)),  # no key
        ("PutItem", service_pb2.PutItemRequest(table_name="not a table name!", item=_item(n))),
        ("Query", service_pb2.QueryRequest(table_name=TABLE)),  # no key condition
        ("BatchWriteItem", service_pb2.BatchWriteItemRequest()),  # nothing to write
    ][n % 4]


UNARY: Mapping[str, Callable[[int], Any]] = {
    "GetItem": _get,
    "PutItem": _put,
    "UpdateItem": _update,
    "DeleteItem": _delete,
    "Query": _query,
    "BatchGetItem": _batch_get,
    "BatchWriteItem": _batch_write,
}


def deck(weights: Mapping[str, int], seed: int = 0) -> list[str]:
    """Each kind as many times as its weight, shuffled: call n is of kind deck[n % len(deck)]."""
    cards = [kind for kind, weight in weights.items() for _ in range(weight)]
    random.Random(seed).shuffle(cards)
    return cards


class ChannelRotation:
    """One channel shared by every caller, replaced after every `calls_per_channel` calls; the old
    one is closed at once, so its calls still in flight end CANCELLED, as when a client exits."""

    def __init__(self, target: str, calls_per_channel: int) -> None:
        self._target = target
        self._calls_per_channel = calls_per_channel
        self._started = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._open()

    def _open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._target)
        self._stub = service_pb2_grpc.DynamoDBServiceStub(self._channel)

    def next_stub(self) -> service_pb2_grpc.DynamoDBServiceStub:
        self._started += 1
        if self._started % self._calls_per_channel == 0:
            closing = asyncio.get_running_loop().create_task(self._channel.close(grace=None))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            self._open()
        return self._stub

    async def close(self) -> None:
        await self._channel.close()
        await asyncio.gather(*self._closing)


async def _stream_code(call: Any, pages: int | None) -> str:
    """Reads `pages` messages of a stream (None: all of them), then cancels what is left."""
    try:
        read = 0
        while pages is None or read < pages:
            if await call.read() is grpc.aio.EOF:
                break
            read += 1
        call.cancel()
    except grpc.aio.AioRpcError:
        pass
    except asyncio.CancelledError:  # its channel was closed under it
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    return str((await call.code()).name)


async def one_call(stub: service_pb2_grpc.DynamoDBServiceStub, kind: str, n: int) -> str:
    """Makes call number `n`, of `kind`; returns the name of the status it ended with."""
    if kind == PARALLEL_SCAN:
        return await _stream_code(stub.ParallelScan(_scan(n), timeout=DEADLINE_S), pages=None)
    if kind == SCAN_CANCELLED:
        return await _stream_code(stub.ParallelScan(_scan(n), timeout=DEADLINE_S), pages=1 + n % 2)
    if kind == INVALID:
        method, request = _invalid(n)
        call = getattr(stub, method)(request, timeout=DEADLINE_S)
    elif kind == SHORT_DEADLINE:
        call = stub.GetItem(_get(n), timeout=0.001 * (1 + n % 5))  # 1 to 5 ms
    elif kind == CANCELLED:
        method = ("GetItem", "PutItem", "Query")[n % 3]
        call = getattr(stub, method)(UNARY[method](n), timeout=DEADLINE_S)
        await asyncio.sleep(0.001 * (n % 4))  # sometimes before it is sent, mostly while it runs
        call.cancel()
    else:
        call = getattr(stub, kind)(UNARY[kind](n), timeout=DEADLINE_S)
    # code() waits for the end of the call and raises nothing, whichever way it ended.
    return str((await call.code()).name)


async def drive(
    target: str,
    calls: int,
    *,
    concurrency: int = 32,
    calls_per_channel: int = 997,
    weights: Mapping[str, int] = WEIGHTS,
    first: int = 0,
) -> collections.Counter[tuple[str, str]]:
    """Makes calls number `first` to `first + calls - 1` from `concurrency` callers on one rotating
    channel. Returns how many ended with each (kind, status name).

    Make `calls_per_channel` prime to the deck's length, or every channel close lands on the same
    slice of the deck and cancels the same kinds of call.
    """
    cards = deck(weights)
    channels = ChannelRotation(target, calls_per_channel)
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()

    async def caller(offset: int) -> None:
        for n in range(first + offset, first + calls, concurrency):
            kind = cards[n % len(cards)]
            outcomes[kind, await one_call(channels.next_stub(), kind, n)] += 1

    try:
        await asyncio.gather(*(caller(offset) for offset in range(concurrency)))
    finally:
        await channels.close()
    return outcomes
