"""Input limits checked before a request reaches DynamoDB, and the in-flight RPC limits.

RequestLimits.check() looks at a request in DynamoDB's shape (after the codec
validated it) and refuses, naming the field as the caller wrote it:
- an item over 400 KB, sized the way DynamoDB sizes it (item_size());
- a partition key value over 2048 bytes or a sort key value over 1024 bytes;
- a value nested more than 32 levels of lists and maps deep;
- an expression over 4 KB, an expression placeholder over 255 bytes;
- a transaction of more than 100 actions.
(Batch sizes are the BatchRunner's: it splits batches up to --batch-max-items.)
Key sizes need the table's key schema; it is looked up only when a top-level
value is long enough to break a sort key's limit, so ordinary requests cost no
DescribeTable. InFlightLimiter counts RPCs per server and per caller and says
no at once when a limit is reached: callers are never queued.
Must not import gRPC; raises the codec's InvalidRequestError for bad input.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from ..codec import InvalidRequestError
from ..key_schema import KeySchema

MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_NESTING_DEPTH = 32
MAX_EXPRESSION_BYTES = 4096
MAX_PLACEHOLDER_BYTES = 255
MAX_TRANSACTION_ITEMS = 100

# DynamoDB parameter -> our proto field, for naming the field in errors.
_EXPRESSIONS = {
    "KeyConditionExpression": "key_condition_expression",
    "FilterExpression": "filter_expression",
    "ProjectionExpression": "projection_expression",
    "ConditionExpression": "condition_expression",
    "UpdateExpression": "update_expression",
}
_EXPRESSION_PARAMS = frozenset({*_EXPRESSIONS, "ExpressionAttributeNames", "ExpressionAttributeValues"})
_TRANSACT_ACTIONS = {
    "Get": "get",
    "Put": "put",
    "Update": "update",
    "Delete": "delete",
    "ConditionCheck": "condition_check",
}

Wire = Mapping[str, Any]
SchemaLookup = Callable[[str], Awaitable[KeySchema | None]]


# ---------------------------------------------------------------- sizes as DynamoDB counts them


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def number_size(text: str) -> int:
    """DynamoDB stores a number as base-100 digit pairs plus an exponent byte (and one more if negative)."""
    number = Decimal(text)
    if number.is_zero():
        return 1
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    exponent = number.adjusted()
    # A digit pair cannot straddle the decimal point: an even count with an odd exponent needs one more.
    padding = 1 if len(digits) % 2 == 0 and exponent % 2 == 0 else 0
    return 1 + (len(digits) + 1) // 2 + padding + (1 if number.is_signed() else 0)


def value_size(value: Wire) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(member) for member in data)
    if kind == "NS":
        return sum(number_size(member) for member in data)
    if kind == "BS":
        return sum(len(member) for member in data)
    if kind == "L":
        # 3 bytes for the list, 1 per element.
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + _utf8(name) + value_size(member) for name, member in data.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Wire) -> int:
    """An item's size as DynamoDB bills and limits it: attribute names plus values (UTF-8 bytes)."""
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def _depth(value: Wire) -> int:
    ((kind, data),) = value.items()
    if kind == "L":
        return 1 + max((_depth(element) for element in data), default=0)
    if kind == "M":
        return 1 + max((_depth(member) for member in data.values()), default=0)
    return 0


def _item_size_at_most(item: Wire) -> int:
    """An upper bound of item_size(), much cheaper for flat items: a character takes at most 4
    UTF-8 bytes and a number at most 3 bytes more than its text; other values are sized exactly."""
    bound = 0
    for name, value in item.items():
        bound += 4 * len(name)
        if "S" in value:
            bound += 4 * len(value["S"])
        elif "N" in value:
            bound += len(value["N"]) + 3
        else:
            bound += value_size(value)
    return bound


def _key_value_size(value: Wire) -> int | None:
    ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "B":
        return len(data)
    return None  # numbers always fit; other types are not keys (DynamoDB says so)


# ---------------------------------------------------------------- the request check


class RequestLimits:
    def __init__(self, schema_of: SchemaLookup) -> None:
        self._schema_of = schema_of

    async def check(self, operation: str, params: Wire) -> None:
        for field, holder in _expression_holders(operation, params):
            _check_expressions(holder, field)
        if len(params.get("TransactItems", ())) > MAX_TRANSACTION_ITEMS:
            raise InvalidRequestError(
                "transact_items",
                f"{len(params['TransactItems'])} actions; a transaction takes at most {MAX_TRANSACTION_ITEMS}",
            )
        for table, field, item, is_item in _items_and_keys(operation, params):
            for name, value in item.items():
                # Only lists and maps nest: a scalar's depth is 0.
                if ("M" in value or "L" in value) and _depth(value) > MAX_NESTING_DEPTH:
                    raise InvalidRequestError(
                        f"{field}.{name}",
                        f"nests {_depth(value)} levels of lists and maps; DynamoDB allows {MAX_NESTING_DEPTH}",
                    )
            # The bound settles ordinary items without sizing them exactly.
            if (
                is_item
                and _item_size_at_most(item) > MAX_ITEM_BYTES
                and (size := item_size(item)) > MAX_ITEM_BYTES
            ):
                raise InvalidRequestError(
                    field,
                    f"the item is {size} bytes (names and values, as DynamoDB counts them); the limit is {MAX_ITEM_BYTES}",
                    "Item.ItemTooLarge",
                )
            long_ones = _too_long_for_a_sort_key(item)
            if long_ones:
                await self._check_keys(table, field, item, long_ones)

    async def _check_keys(self, table: str, field: str, item: Wire, long_ones: set[str]) -> None:
        schema = await self._schema_of(table)
        if schema is None:
            return  # unknown table (or DynamoDB unreachable): DynamoDB will answer for itself
        for name, limit, what in (
            (schema.partition, MAX_PARTITION_KEY_BYTES, "partition"),
            (schema.sort, MAX_SORT_KEY_BYTES, "sort"),
        ):
            if name in long_ones and (size := _key_value_size(item[name]) or 0) > limit:
                raise InvalidRequestError(
                    f"{field}.{name}",
                    f"the {what} key value is {size} bytes; DynamoDB allows {limit}",
                    "Validation.InvalidKey",
                )


def _too_long_for_a_sort_key(item: Wire) -> set[str]:
    """The attributes whose value breaks the sort key's limit: below it neither key limit can be
    broken, whichever attribute is the key."""
    long_ones = set()
    for name, value in item.items():
        # Text of at most 256 characters is at most 1024 UTF-8 bytes: no need to encode it.
        if "S" in value and len(value["S"]) <= MAX_SORT_KEY_BYTES // 4:
            continue
        if (size := _key_value_size(value)) is not None and size > MAX_SORT_KEY_BYTES:
            long_ones.add(name)
    return long_ones


def _check_expressions(holder: Wire, prefix: str) -> None:
    if _EXPRESSION_PARAMS.isdisjoint(holder):  # most requests carry no expression at all
        return
    for param, name in _EXPRESSIONS.items():
        expression = holder.get(param)
        if expression and (size := _utf8(expression)) > MAX_EXPRESSION_BYTES:
            raise InvalidRequestError(
                f"{prefix}{name}",
                f"the expression is {size} bytes; DynamoDB allows {MAX_EXPRESSION_BYTES}",
                "Validation.InvalidExpression",
            )
    for param, name in (
        ("ExpressionAttributeNames", "expression_attribute_names"),
        ("ExpressionAttributeValues", "expression_attribute_values"),
    ):
        for placeholder, value in holder.get(param, {}).items():
            if _utf8(placeholder) > MAX_PLACEHOLDER_BYTES:
                raise InvalidRequestError(
                    f"{prefix}{name}",
                    f"a placeholder is {_utf8(placeholder)} bytes; DynamoDB allows {MAX_PLACEHOLDER_BYTES}",
                    "Validation.InvalidExpression",
                )
            if param == "ExpressionAttributeValues" and _depth(value) > MAX_NESTING_DEPTH:
                raise InvalidRequestError(
                    f"{prefix}{name}[{placeholder}]",
                    f"nests {_depth(value)} levels of lists and maps; DynamoDB allows {MAX_NESTING_DEPTH}",
                )


def _expression_holders(operation: str, params: Wire) -> Iterator[tuple[str, Wire]]:
    """(field prefix, dict holding expressions) for every place a request carries expressions."""
    yield "", params
    if operation == "BatchGetItem":
        for table, spec in params.get("RequestItems", {}).items():
            yield f"request_items[{table}].", spec
    for index, entry in enumerate(params.get("TransactItems", ())):
        for kind, action in entry.items():
            yield f"transact_items[{index}].{_TRANSACT_ACTIONS.get(kind, kind)}.", action


def _items_and_keys(operation: str, params: Wire) -> Iterator[tuple[str, str, Wire, bool]]:
    """(table, field, item or key, is a whole item) for every item and key a request carries."""
    table = params.get("TableName", "")
    if "Item" in params:
        yield table, "item", params["Item"], True
    if "Key" in params:
        yield table, "key", params["Key"], False
    if operation == "BatchWriteItem":
        for name, writes in params.get("RequestItems", {}).items():
            for index, write in enumerate(writes):
                field = f"request_items[{name}].requests[{index}]"
                if "PutRequest" in write:
                    yield name, f"{field}.put_request.item", write["PutRequest"]["Item"], True
                if "DeleteRequest" in write:
                    yield name, f"{field}.delete_request.key", write["DeleteRequest"]["Key"], False
    if operation == "BatchGetItem":
        for name, spec in params.get("RequestItems", {}).items():
            for index, key in enumerate(spec.get("Keys", ())):
                yield name, f"request_items[{name}].keys[{index}]", key, False
    for index, entry in enumerate(params.get("TransactItems", ())):
        for kind, action in entry.items():
            field = f"transact_items[{index}].{_TRANSACT_ACTIONS.get(kind, kind)}"
            if "Item" in action:
                yield action.get("TableName", ""), f"{field}.item", action["Item"], True
            if "Key" in action:
                yield action.get("TableName", ""), f"{field}.key", action["Key"], False


# ---------------------------------------------------------------- in-flight RPCs


class InFlightLimiter:
    """RPCs in flight, in all and per caller; enter() refuses at once instead of queueing."""

    def __init__(self, max_total: int, max_per_caller: int) -> None:
        # 0: no limit.
        self.max_total = max_total
        self.max_per_caller = max_per_caller
        self.total = 0
        self._per_caller: collections.Counter[str] = collections.Counter()

    def enter(self, caller: str) -> str | None:
        """Takes a slot; None on success, else which limit refused: "server" or "caller"."""
        if self.max_total and self.total >= self.max_total:
            return "server"
        if self.max_per_caller and self._per_caller[caller] >= self.max_per_caller:
            return "caller"
        self.total += 1
        self._per_caller[caller] += 1
        return None

    def leave(self, caller: str) -> None:
        self.total -= 1
        self._per_caller[caller] -= 1
        if self._per_caller[caller] <= 0:
            del self._per_caller[caller]  # bounded by callers in flight, not callers ever seen

    def in_flight(self, caller: str) -> int:
        return self._per_caller.get(caller, 0)
