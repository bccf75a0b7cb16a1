"""Expired items left out of reads: DynamoDB deletes an item past its TTL only within a few days.

For the tables whose TTL attribute is declared, every read leaves out the items
whose TTL (a number of epoch seconds) is earlier than the gateway's clock, unless
the RPC asks for them (`include_expired`, held in INCLUDE_EXPIRED for the RPC):
Query and Scan (and so ParallelScan's pages) get a filter ANDed with the caller's,
so Count, ScannedCount and LastEvaluatedKey stay DynamoDB's own; GetItem,
BatchGetItem and TransactGetItems drop the expired items from the answer, asking
for the TTL attribute when a projection leaves it out (and removing it again).
Sits above the batches' splitting and below the servicer, so each DynamoDB call
is filtered; the gateway's own reads (versioned writes reading back) bypass it.
Must not import gRPC.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .backends import DynamoBackend
from .made_here import noted, wall_time
from .update_expression import top_level_attributes, unused_placeholder

# True while an RPC that asked for expired items runs (set by the servicer, read per call).
INCLUDE_EXPIRED: contextvars.ContextVar[bool] = contextvars.ContextVar("include_expired", default=False)


class including_expired:  # lower case: it replaced a function and reads as one at `with`
    """While inside, reads show expired items too, when `wanted` (the RPC's include_expired).

    A class rather than a generator context manager: it runs on every RPC, and contextlib's
    machinery cost more than the rest of it (bench/path_cost.py --instructions)."""

    __slots__ = ("_token", "_wanted")

    def __init__(self, wanted: bool) -> None:
        self._wanted = wanted
        self._token: contextvars.Token[bool] | None = None

    def __enter__(self) -> None:
        if self._wanted:
            self._token = INCLUDE_EXPIRED.set(True)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            INCLUDE_EXPIRED.reset(self._token)


# (table, operation, items left out): the metric's callback.
HiddenCounter = Callable[[str, str, int], None]


def is_expired(item: Mapping[str, Any], attribute: str, now: float) -> bool:
    """DynamoDB's rule: a number in the TTL attribute, earlier than now."""
    value = item.get(attribute)
    if not isinstance(value, Mapping) or "N" not in value:
        return False
    try:
        return Decimal(value["N"]) < Decimal(repr(now))
    except InvalidOperation:
        return False


def _not_expired_filter(params: dict[str, Any], attribute: str, now: float) -> dict[str, Any]:
    """Query or Scan parameters whose filter also leaves out the expired items."""
    names = dict(params.get("ExpressionAttributeNames", {}))
    values = dict(params.get("ExpressionAttributeValues", {}))
    name = unused_placeholder("#dgw_ttl", names)
    number, current = unused_placeholder(":dgw_n", values), unused_placeholder(":dgw_now", values)
    names[name] = attribute
    values[number], values[current] = {"S": "N"}, {"N": noted(repr(now))}
    ours = f"attribute_not_exists({name}) OR NOT attribute_type({name}, {number}) OR {name} >= {current}"
    own = params.get("FilterExpression")
    return {
        **params,
        "FilterExpression": f"({own}) AND ({ours})" if own else ours,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _projecting(holder: dict[str, Any], attribute: str) -> tuple[dict[str, Any], bool]:
    """The read's parameters asking for the TTL attribute too; True when it was added (so it is
    removed from the answer)."""
    projection = holder.get("ProjectionExpression")
    names = holder.get("ExpressionAttributeNames", {})
    if not projection or attribute in top_level_attributes(projection, names):
        return holder, False
    name = unused_placeholder("#dgw_ttl", names)
    return {
        **holder,
        "ProjectionExpression": f"{projection}, {name}",
        "ExpressionAttributeNames": {**names, name: attribute},
    }, True


class ExpiredItemsHidden:
    """The read stage that leaves out expired items of the tables with a declared TTL attribute."""

    def __init__(
        self,
        inner: DynamoBackend,
        attributes: Mapping[str, str],
        clock: Callable[[], float] = wall_time,
        count_hidden: HiddenCounter | None = None,
    ) -> None:
        """`attributes`: table -> its TTL attribute (shared: the gateway adds those it learns at
        startup); `clock`: the wall clock, in epoch seconds."""
        self.inner = inner
        self._attributes = attributes
        self._clock = clock
        self._count_hidden = count_hidden

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if not self._attributes or INCLUDE_EXPIRED.get():
            return await self.inner.call(operation, params)
        if operation in ("Query", "Scan"):
            attribute = self._attributes.get(params.get("TableName", ""))
            if attribute is not None:
                params = _not_expired_filter(params, attribute, self._clock())
            return await self.inner.call(operation, params)
        if operation == "GetItem":
            return await self._get_item(params)
        if operation == "BatchGetItem":
            return await self._batch_get(params)
        if operation == "TransactGetItems":
            return await self._transact_get(params)
        return await self.inner.call(operation, params)

    async def _get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        table = params.get("TableName", "")
        attribute = self._attributes.get(table)
        if attribute is None:
            return await self.inner.call("GetItem", params)
        asked, added = _projecting(params, attribute)
        response = await self.inner.call("GetItem", asked)
        item = response.get("Item")
        if item is None:
            return response
        if is_expired(item, attribute, self._clock()):
            self._hidden(table, "GetItem", 1)
            return {k: v for k, v in response.items() if k != "Item"}
        if added:
            response["Item"] = {k: v for k, v in item.items() if k != attribute}
        return response

    async def _batch_get(self, params: dict[str, Any]) -> dict[str, Any]:
        added: dict[str, str] = {}  # table -> the TTL attribute added to its projection
        request_items = {}
        for table, spec in params["RequestItems"].items():
            attribute = self._attributes.get(table)
            if attribute is not None:
                spec, was_added = _projecting(spec, attribute)
                if was_added:
                    added[table] = attribute
            request_items[table] = spec
        response = await self.inner.call("BatchGetItem", {**params, "RequestItems": request_items})
        now = self._clock()
        for table, items in response.get("Responses", {}).items():
            attribute = self._attributes.get(table)
            if attribute is None:
                continue
            kept = [i for i in items if not is_expired(i, attribute, now)]
            if len(kept) < len(items):
                self._hidden(table, "BatchGetItem", len(items) - len(kept))
            if table in added:
                kept = [{k: v for k, v in i.items() if k != attribute} for i in kept]
            response["Responses"][table] = kept
        return response

    async def _transact_get(self, params: dict[str, Any]) -> dict[str, Any]:
        gets, added = [], []
        for entry in params["TransactItems"]:
            get = entry["Get"]
            attribute = self._attributes.get(get.get("TableName", ""))
            was_added = False
            if attribute is not None:
                get, was_added = _projecting(get, attribute)
            gets.append({"Get": get})
            added.append(was_added)
        response = await self.inner.call("TransactGetItems", {**params, "TransactItems": gets})
        now = self._clock()
        for index, (entry, answer) in enumerate(zip(gets, response.get("Responses", ()), strict=False)):
            table = entry["Get"].get("TableName", "")
            attribute = self._attributes.get(table)
            item = answer.get("Item")
            if attribute is None or item is None:
                continue
            if is_expired(item, attribute, now):
                self._hidden(table, "TransactGetItems", 1)
                response["Responses"][index] = {}
            elif added[index]:
                answer["Item"] = {k: v for k, v in item.items() if k != attribute}
        return response

    def _hidden(self, table: str, operation: str, count: int) -> None:
        if self._count_hidden is not None:
            self._count_hidden(table, operation, count)

    async def close(self) -> None:
        await self.inner.close()
