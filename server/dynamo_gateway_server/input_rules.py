"""DynamoDB's own input rules, checked before a request is sent, naming the field the caller wrote.

InputRules.check() looks at a request in DynamoDB's shape (after the codec
validated its types) and refuses what DynamoDB would refuse, naming the field as
the caller wrote it, in DynamoDB's own words (dynamo_gateway.dynamodb_messages):
- an item over 400 KB, sized the way DynamoDB sizes it (item_size());
- a partition key value over 2048 bytes or a sort key value over 1024 bytes;
- a value nested more than 32 levels of lists and maps deep;
- an expression over 4 KB, an expression placeholder over 255 bytes;
- a transaction of more than 100 actions.
(Batch sizes are the BatchRunner's: it splits batches up to --batch-max-items.)
Key sizes need the table's key schema; it is looked up only when a top-level
value is long enough to break a sort key's limit, so ordinary requests cost no
DescribeTable. Next to the codec: both say what DynamoDB takes. Must not import
gRPC; raises the codec's InvalidRequestError for bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from dynamo_gateway import dynamodb_messages as messages

from .codec import InvalidRequestError, refused
from .key_schema import KeySchema
from .request_shape import ITEM, TABLE, has_expressions, walk

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


class InputRules:
    def __init__(self, schema_of: SchemaLookup) -> None:
        self._schema_of = schema_of

    async def check(self, operation: str, params: Wire) -> None:
        if (actions := len(params.get("TransactItems", ()))) > MAX_TRANSACTION_ITEMS:
            member = "TransactGetItem" if operation == "TransactGetItems" else "TransactWriteItem"
            raise refused("transact_items", messages.transaction_size(actions, member))
        for part in walk(operation, params):
            if part.kind == TABLE:
                if has_expressions(part.value):  # most requests carry no expression at all
                    _check_expressions(operation, part.value, f"{part.field}." if part.field else "")
                continue
            item, field = part.value, part.field
            for name, value in item.items():
                # Only lists and maps nest: a scalar's depth is 0.
                if ("M" in value or "L" in value) and _depth(value) > MAX_NESTING_DEPTH:
                    raise _too_deep(f"{field}.{name}", _depth(value))
            # The bound settles ordinary items without sizing them exactly.
            if (
                part.kind == ITEM
                and _item_size_at_most(item) > MAX_ITEM_BYTES
                and (size := item_size(item)) > MAX_ITEM_BYTES
            ):
                raise InvalidRequestError(
                    field,
                    f"{messages.ITEM_TOO_LARGE}: the item is {size} bytes (names and values, as DynamoDB "
                    f"counts them); the limit is {MAX_ITEM_BYTES}",
                    "Item.ItemTooLarge",
                    dynamodb_message=messages.ITEM_TOO_LARGE,
                )
            long_ones = _too_long_for_a_sort_key(item)
            if long_ones:
                await self._check_keys(part.table, field, item, long_ones)

    async def _check_keys(self, table: str, field: str, item: Wire, long_ones: set[str]) -> None:
        schema = await self._schema_of(table)
        if schema is None:
            return  # unknown table (or DynamoDB unreachable): DynamoDB will answer for itself
        for name, limit, message in (
            (schema.partition, MAX_PARTITION_KEY_BYTES, messages.HASH_KEY_TOO_LONG),
            (schema.sort, MAX_SORT_KEY_BYTES, messages.RANGE_KEY_TOO_LONG),
        ):
            if name in long_ones and (size := _key_value_size(item[name]) or 0) > limit:
                raise InvalidRequestError(
                    f"{field}.{name}",
                    f"{message} (the value is {size} bytes)",
                    "Validation.InvalidKey",
                    dynamodb_message=message,
                )


def _too_deep(field: str, depth: int) -> InvalidRequestError:
    return InvalidRequestError(
        field,
        f"{messages.NESTING_TOO_DEEP} ({depth} levels of lists and maps; DynamoDB allows {MAX_NESTING_DEPTH})",
        dynamodb_message=messages.NESTING_TOO_DEEP,
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


def _check_expressions(operation: str, holder: Wire, prefix: str) -> None:
    for param, name in _EXPRESSIONS.items():
        expression = holder.get(param)
        if expression and (size := _utf8(expression)) > MAX_EXPRESSION_BYTES:
            message = messages.expression_too_long(param, size)
            if not prefix:  # a transaction's or a batch's own tables answer bare
                message = messages.in_envelope("expression_too_long", operation, message)
            raise refused(f"{prefix}{name}", message, "Validation.InvalidExpression")
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
                raise _too_deep(f"{prefix}{name}[{placeholder}]", _depth(value))
