"""DynamoDB's own value shapes (boto3's dicts) <-> AttributeValue messages, without loss.

The shapes are the ones boto3's low-level client takes and returns: {"S": str},
{"N": str}, {"B": bytes}, {"SS": [str]}, {"NS": [str]}, {"BS": [bytes]},
{"M": {...}}, {"L": [...]}, {"NULL": True}, {"BOOL": bool}. Used by the boto3
facade and the CLI's DynamoDB JSON. Numbers stay the caller's text; the gateway
checks them. Must not import grpc or any AWS SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamo_gateway.v1 import value_pb2

Wire = dict[str, Any]

TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")


class WireValueError(ValueError):
    """A value DynamoDB would refuse before looking at it; the message is DynamoDB's."""


def _blob(data: Any) -> bytes:
    # boto3 accepts bytes, bytearray, str (sent as its UTF-8 bytes) and readable files.
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if hasattr(data, "read"):
        content = data.read()
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)
    raise WireValueError(f"binary values are bytes, not {type(data).__name__}")


def _text(data: Any, kind: str) -> str:
    if not isinstance(data, str):
        raise WireValueError(f"{kind} values are strings, not {type(data).__name__}")
    return data


def fill_value(target: value_pb2.AttributeValue, wire: Mapping[str, Any]) -> None:
    """Writes one DynamoDB attribute value into target, in place."""
    if not isinstance(wire, Mapping):
        raise WireValueError(f"an attribute value is a map such as {{'S': ...}}, not {type(wire).__name__}")
    if len(wire) != 1:
        if not wire:
            raise WireValueError(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
            )
        raise WireValueError(
            "Supplied AttributeValue has more than one datatypes set, "
            "must contain exactly one of the supported datatypes"
        )
    ((tag, data),) = wire.items()
    if tag == "S":
        target.s = _text(data, "S")
    elif tag == "N":
        target.n = _text(data, "N")
    elif tag == "B":
        target.b = _blob(data)
    elif tag == "BOOL":
        if not isinstance(data, bool):
            raise WireValueError(f"BOOL values are booleans, not {type(data).__name__}")
        target.bool = data
    elif tag == "NULL":
        if not isinstance(data, bool):
            raise WireValueError(f"NULL values are booleans, not {type(data).__name__}")
        # False is kept, so that DynamoDB's own refusal of it reaches the caller.
        target.null = data
    elif tag == "M":
        if not isinstance(data, Mapping):
            raise WireValueError(f"M values are maps, not {type(data).__name__}")
        target.m.SetInParent()  # an empty map is still a map
        fill_item(target.m.fields, data)
    elif tag == "L":
        target.l.SetInParent()
        for element in data:
            fill_value(target.l.values.add(), element)
    elif tag == "SS":
        target.ss.SetInParent()
        target.ss.values.extend(_text(v, "SS") for v in data)
    elif tag == "NS":
        target.ns.SetInParent()
        target.ns.values.extend(_text(v, "NS") for v in data)
    elif tag == "BS":
        target.bs.SetInParent()
        target.bs.values.extend(_blob(v) for v in data)
    else:
        raise WireValueError(f"{tag!r} is not a DynamoDB type; use one of {', '.join(TYPES)}")


def fill_item(target: Any, wire: Mapping[str, Any]) -> None:
    """Fills a map<string, AttributeValue> from DynamoDB's {name: {type: value}}."""
    for name, value in wire.items():
        if not isinstance(name, str):
            raise WireValueError(f"attribute names are strings, not {type(name).__name__}")
        fill_value(target[name], value)


def value_to_wire(value: value_pb2.AttributeValue) -> Wire:
    kind = value.WhichOneof("value")
    if kind == "s":
        return {"S": value.s}
    if kind == "n":
        return {"N": value.n}
    if kind == "b":
        return {"B": value.b}
    if kind == "m":
        return {"M": item_to_wire(value.m.fields)}
    if kind == "l":
        return {"L": [value_to_wire(v) for v in value.l.values]}
    if kind == "bool":
        return {"BOOL": value.bool}
    if kind == "null":
        return {"NULL": True}
    if kind == "ss":
        return {"SS": list(value.ss.values)}
    if kind == "ns":
        return {"NS": list(value.ns.values)}
    if kind == "bs":
        return {"BS": list(value.bs.values)}
    raise ValueError("attribute value has no type set")


def item_to_wire(item: Mapping[str, value_pb2.AttributeValue]) -> Wire:
    return {name: value_to_wire(value) for name, value in item.items()}
