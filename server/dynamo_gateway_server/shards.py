"""A sharded partition read as if it were one: a Query sent to every shard, merged in sort order.

A sharded entity (entity_model.py) spreads one logical partition over N physical ones, each a
sorted run of items. `query_every_shard` queries the shards concurrently and merges their
runs the way DynamoDB orders one partition (by sort key, either direction), emitting an item
only once no shard can still hold one that sorts before it. Its answer is a Query answer:
`Limit` counts the items answered (after any filter), not the items evaluated, and
`LastEvaluatedKey` is one resume token (`_dgw_shards`) that holds each shard's position; the
caller passes it back as the exclusive start key, as with any page. Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import base64
import collections
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from .backends import DynamoBackend
from .backends.json_protocol import decode_blobs, encode_default
from .codec import InvalidRequestError
from .entities import ShardFanOut
from .update_expression import top_level_attributes, unused_placeholder

RESUME_ATTRIBUTE = "_dgw_shards"
_FORMAT = 1
# Shards queried at once: a bound, like ParallelScan's, on one RPC's share of the backend.
CONCURRENCY = 8


@dataclass
class _Shard:
    number: int
    partition: dict[str, str]
    # Where its next unread item comes after: a key, or None for its beginning.
    position: dict[str, Any] | None = None
    done: bool = False
    fetches: int = 0
    buffer: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    # The key its last page stopped at (the run goes on after it), while its buffer is empty.
    stopped_at: dict[str, Any] | None = None


def _sort_value(kind: str, value: Any) -> Any:
    """What DynamoDB orders a sort key by: numbers by value, text and binary by their bytes."""
    if kind == "N":
        return Decimal(value)
    return value.encode() if isinstance(value, str) else bytes(value)


def encode_token(shards: list[_Shard]) -> dict[str, Any]:
    positions = ["done" if s.done and not s.buffer else s.position for s in shards]
    text = base64.urlsafe_b64encode(orjson.dumps({"v": _FORMAT, "s": positions}, default=encode_default))
    return {RESUME_ATTRIBUTE: {"S": text.decode()}}


def _decode_token(start: Any, shards: int) -> list[Any]:
    """Each shard's position from a resume token; InvalidRequestError for anything else."""
    token = start.get(RESUME_ATTRIBUTE, {}).get("S") if isinstance(start, dict) and len(start) == 1 else None
    try:
        document = orjson.loads(base64.urlsafe_b64decode(token)) if isinstance(token, str) else None
    except (ValueError, orjson.JSONDecodeError):
        document = None
    positions = document.get("s") if isinstance(document, dict) and document.get("v") == _FORMAT else None
    if not isinstance(positions, list) or len(positions) != shards:
        raise InvalidRequestError(
            "exclusive_start_key",
            f"a query over every shard resumes from the last_evaluated_key it answered ({RESUME_ATTRIBUTE})",
        )
    if any(not (p is None or p == "done" or isinstance(p, dict)) for p in positions):
        raise InvalidRequestError("exclusive_start_key", f"{RESUME_ATTRIBUTE} is damaged")
    return [decode_blobs(p) if isinstance(p, dict) else p for p in positions]


def _with_keys_projected(params: dict[str, Any], keys: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """`params` whose projection (if any) includes the table's keys, which the merge needs; and
    the keys it added (left out of the answer again)."""
    projection = params.get("ProjectionExpression")
    if not projection:
        return params, []
    names = dict(params.get("ExpressionAttributeNames", {}))
    present = top_level_attributes(projection, names)
    added = [key for key in keys if key not in present]
    for key in added:
        name = unused_placeholder("#dgw_key", names)
        names[name] = key
        projection += f", {name}"
    return {**params, "ProjectionExpression": projection, "ExpressionAttributeNames": names}, added


async def query_every_shard(
    backend: DynamoBackend, params: dict[str, Any], fan_out: ShardFanOut, concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    """One page of a Query over every shard (params name shard 0's partition), as a Query answer."""
    if params.get("Select") == "COUNT":
        raise InvalidRequestError("select", "COUNT over a sharded entity's shards is not supported yet")
    limit = params.pop("Limit", None)
    forward = params.get("ScanIndexForward", True)
    start = params.pop("ExclusiveStartKey", None)
    params, added = _with_keys_projected(params, fan_out.table_keys)
    shards = [_Shard(n, partition) for n, partition in enumerate(fan_out.partitions)]
    if start is not None:
        for shard, position in zip(shards, _decode_token(start, len(shards)), strict=True):
            shard.done = position == "done"
            shard.position = None if shard.done else position
    sort_key, kind = fan_out.sort_key, fan_out.sort_type
    gate = asyncio.Semaphore(concurrency)
    answered: list[dict[str, Any]] = []
    scanned = 0
    capacity = 0.0

    async def fetch(shard: _Shard) -> None:
        nonlocal scanned, capacity
        request = {**params, "ExpressionAttributeValues": {**params["ExpressionAttributeValues"]}}
        request["ExpressionAttributeValues"][fan_out.partition_value] = shard.partition
        if shard.position is not None:
            request["ExclusiveStartKey"] = shard.position
        if limit is not None:
            request["Limit"] = limit - len(answered)
        async with gate:
            page = await backend.call("Query", request)
        shard.fetches += 1
        shard.buffer.extend(page.get("Items", ()))
        scanned += page.get("ScannedCount", 0)
        capacity += page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)
        shard.stopped_at = page.get("LastEvaluatedKey")
        shard.done = shard.stopped_at is None
        if not shard.buffer and shard.stopped_at is not None:
            shard.position = shard.stopped_at

    def order(item: dict[str, Any]) -> Any:
        return _sort_value(kind, next(iter(item[sort_key].values()))) if sort_key else 0

    def before(a: Any, b: Any) -> bool:
        return bool(a < b) if forward else bool(a > b)

    while limit is None or len(answered) < limit:
        # Without a Limit, a page is what one page of every shard allows (as DynamoDB's are bounded).
        hungry = [s for s in shards if not s.buffer and not s.done and (limit is not None or s.fetches == 0)]
        if hungry:
            await asyncio.gather(*(fetch(shard) for shard in hungry))
        ready = [s for s in shards if s.buffer]
        if not ready:
            if all(s.done for s in shards) or limit is None:
                break
            continue
        # Equal sort keys (items of different logical keys) come in shard order, either way.
        if forward:
            head = min(ready, key=lambda s: (order(s.buffer[0]), s.number))
        else:
            head = max(ready, key=lambda s: (order(s.buffer[0]), -s.number))
        head_order = order(head.buffer[0])
        # A shard whose page stopped before the head may hold items that come first: read it on.
        blocked = [
            s
            for s in shards
            if not s.buffer
            and not s.done
            and (s.stopped_at is None or before(order(s.stopped_at), head_order))
        ]
        if blocked:
            if limit is None:
                break
            continue
        item = head.buffer.popleft()
        head.position = {key: item[key] for key in fan_out.table_keys}
        if not head.buffer and head.stopped_at is not None:
            head.position = head.stopped_at
        answered.append({k: v for k, v in item.items() if k not in added})
    answer: dict[str, Any] = {"Items": answered, "Count": len(answered), "ScannedCount": scanned}
    if not all(s.done and not s.buffer for s in shards):
        answer["LastEvaluatedKey"] = encode_token(shards)
    if capacity:
        answer["ConsumedCapacity"] = {"TableName": params["TableName"], "CapacityUnits": capacity}
    return answer
