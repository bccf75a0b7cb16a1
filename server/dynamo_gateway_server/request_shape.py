"""What a DynamoDB request touches: the one walker over a request's tables, items, keys and expressions.

Every stage that asks "which tables, which keys, which items, which expressions
does this request carry?" (the policy, the input limits, the key-value
extraction for spans and partition detectors, telemetry's table labels, the
batches' entry lists) asks `walk()`, so a new request shape (or a new stage)
is taught in one place. Each part names the field where the caller wrote it,
as the proto path (`request_items[orders].requests[3].put_request.item`), for
error messages. Works on DynamoDB's parameter shapes (after the codec);
pure: must not import gRPC, the backends or anything that does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

Wire = Mapping[str, Any]

# What a part is.
TABLE = "table"
"""A table the request reads or writes; `value` holds its parameters (and expressions, if any)."""
ITEM = "item"
"""A whole item the request writes."""
KEY = "key"
"""The primary key of an item the request reads, updates, deletes or checks."""

# Parameters that hold expressions and their placeholders.
EXPRESSION_PARAMS = frozenset(
    {
        "KeyConditionExpression",
        "FilterExpression",
        "ProjectionExpression",
        "ConditionExpression",
        "UpdateExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
    }
)
_TRANSACT_ACTIONS = {
    "Get": "get",
    "Put": "put",
    "Update": "update",
    "Delete": "delete",
    "ConditionCheck": "condition_check",
}
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
_TRANSACT_WRITES = frozenset({"Put", "Update", "Delete"})


class Part(NamedTuple):
    """One thing a request touches (a named tuple: every request makes a few)."""

    kind: str
    """TABLE, ITEM or KEY."""
    table: str
    field: str
    """Where the caller wrote it, as the proto field path ("" for the request itself)."""
    value: Wire
    """The table's parameters (TABLE), the item (ITEM) or the key (KEY)."""
    writes: bool
    """Whether the request changes it."""
    index_name: str | None = None
    """The index a TABLE part reads through, if any."""
    position: int = -1
    """The part's place in its batch list (BatchWriteItem, BatchGetItem), else -1."""


_new = tuple.__new__


def walk(operation: str, params: Wire) -> Iterator[Part]:
    """Every table, item and key `params` touches, in request order."""
    table = params.get("TableName")
    if table is not None:
        # Every call comes here, several times: these parts are made as the tuples they are,
        # without the named tuple's Python-level __new__ (half of the walk's cost).
        writes = operation in _WRITES
        yield _new(Part, (TABLE, table, "", params, writes, params.get("IndexName"), -1))
        if "Item" in params:
            yield _new(Part, (ITEM, table, "item", params["Item"], True, None, -1))
        if "Key" in params:
            yield _new(Part, (KEY, table, "key", params["Key"], writes, None, -1))
    if operation == "BatchWriteItem":
        for name, writes_of_table in params.get("RequestItems", {}).items():
            field = f"request_items[{name}]"
            yield Part(TABLE, name, field, {}, True)
            for position, write in enumerate(writes_of_table):
                if "PutRequest" in write:
                    item = write["PutRequest"].get("Item", {})
                    where = f"{field}.requests[{position}].put_request.item"
                    yield Part(ITEM, name, where, item, True, position=position)
                elif "DeleteRequest" in write:
                    key = write["DeleteRequest"].get("Key", {})
                    where = f"{field}.requests[{position}].delete_request.key"
                    yield Part(KEY, name, where, key, True, position=position)
    elif operation == "BatchGetItem":
        for name, spec in params.get("RequestItems", {}).items():
            field = f"request_items[{name}]"
            yield Part(TABLE, name, field, spec, False)
            for position, key in enumerate(spec.get("Keys", ())):
                yield Part(KEY, name, f"{field}.keys[{position}]", key, False, position=position)
    for number, entry in enumerate(params.get("TransactItems", ())):
        for kind, action in entry.items():
            name = action.get("TableName", "")
            field = f"transact_items[{number}].{_TRANSACT_ACTIONS.get(kind, kind)}"
            writes = kind in _TRANSACT_WRITES
            yield Part(TABLE, name, field, action, writes)
            if "Item" in action:
                yield Part(ITEM, name, f"{field}.item", action["Item"], True)
            if "Key" in action:
                yield Part(KEY, name, f"{field}.key", action["Key"], writes)


def tables(operation: str, params: Wire) -> tuple[str, ...]:
    """Every table a request touches, once each in a stable order; ("",) when it names none."""
    if "TableName" in params:  # the common case, without a walk: this runs on every call
        return (params["TableName"],)
    names = {part.table for part in walk(operation, params) if part.kind == TABLE}
    return tuple(sorted(names)) if names else ("",)


def has_expressions(holder: Wire) -> bool:
    """Whether a TABLE part's parameters carry any expression or placeholder."""
    return not EXPRESSION_PARAMS.isdisjoint(holder)
