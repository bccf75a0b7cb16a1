"""Python values <-> AttributeValue messages, without loss.

str -> S, bool -> BOOL, int and Decimal -> N, bytes -> B, None -> NULL,
list/tuple -> L, dict -> M, set/frozenset of str, numbers or bytes -> SS, NS, BS.
Floats are refused: binary floating point cannot say what the caller meant
(use Decimal("0.1") or int). Numbers come back as int when written as a plain
integer (DynamoDB returns numbers normalised, so stored integers do), else as
Decimal. Must not import grpc.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeAlias

from dynamo_gateway.v1 import value_pb2

Value: TypeAlias = Any
Item: TypeAlias = dict[str, Any]


def _number_text(number: int | Decimal) -> str:
    if isinstance(number, Decimal) and not number.is_finite():
        raise ValueError(f"DynamoDB numbers are finite, not {number}")
    return str(number)


def fill_attribute_value(target: value_pb2.AttributeValue, value: Value) -> None:
    """Writes value into target in place."""
    if isinstance(value, str):
        target.s = value
    elif isinstance(value, bool):  # before int: bool is an int subclass
        target.bool = value
    elif isinstance(value, int | Decimal):
        target.n = _number_text(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        target.b = bytes(value)
    elif value is None:
        target.null = True
    elif isinstance(value, Mapping):
        target.m.SetInParent()
        fill_item(target.m.fields, value)
    elif isinstance(value, list | tuple):
        target.l.SetInParent()
        for element in value:
            fill_attribute_value(target.l.values.add(), element)
    elif isinstance(value, set | frozenset):
        _fill_set(target, value)
    elif isinstance(value, float):
        raise TypeError(f"float {value!r} is not supported: use Decimal or int so no digits are lost")
    else:
        raise TypeError(f"{type(value).__name__} cannot be stored in DynamoDB")


def _fill_set(target: value_pb2.AttributeValue, members: set[Any] | frozenset[Any]) -> None:
    if not members:
        raise ValueError("DynamoDB does not store empty sets")
    if all(isinstance(m, str) for m in members):
        target.ss.values.extend(sorted(members))
    elif all(isinstance(m, int | Decimal) and not isinstance(m, bool) for m in members):
        texts = {m: _number_text(m) for m in members}  # rejects NaN before sorting compares it
        target.ns.values.extend(texts[m] for m in sorted(members))
    elif all(isinstance(m, bytes) for m in members):
        target.bs.values.extend(sorted(members))
    else:
        raise TypeError("a set holds only strings, only numbers or only bytes")


def to_attribute_value(value: Value) -> value_pb2.AttributeValue:
    target = value_pb2.AttributeValue()
    fill_attribute_value(target, value)
    return target


def fill_item(target: Any, item: Mapping[str, Value]) -> None:
    for name, value in item.items():
        if not isinstance(name, str):
            raise TypeError(f"attribute names are strings, not {type(name).__name__}")
        fill_attribute_value(target[name], value)


def _number(text: str) -> int | Decimal:
    if text.lstrip("+-").isdigit():
        return int(text)
    return Decimal(text)


def from_attribute_value(value: value_pb2.AttributeValue) -> Value:
    kind = value.WhichOneof("value")
    if kind == "s":
        return value.s
    if kind == "n":
        return _number(value.n)
    if kind == "b":
        return value.b
    if kind == "bool":
        return value.bool
    if kind == "null":
        return None
    if kind == "m":
        return from_item(value.m.fields)
    if kind == "l":
        return [from_attribute_value(v) for v in value.l.values]
    if kind == "ss":
        return set(value.ss.values)
    if kind == "ns":
        return {_number(v) for v in value.ns.values}
    if kind == "bs":
        return set(value.bs.values)
    raise ValueError("attribute value has no type set")


def from_item(item: Mapping[str, value_pb2.AttributeValue]) -> Item:
    return {name: from_attribute_value(value) for name, value in item.items()}
