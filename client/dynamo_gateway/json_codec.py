"""Items as JSON text, for the CLI: plain JSON or DynamoDB JSON <-> AttributeValue maps.

Plain JSON is what people type: {"pk": "user#1", "age": 36}. Numbers keep their
digits (read as int or Decimal, written back as they were), but JSON has no sets and
no binary: sets come out as sorted lists and binary as base64 strings, so plain
JSON round-trips only the types JSON has. DynamoDB JSON ({"age": {"N": "36"}}, binary
as base64) is lossless; exports meant to be imported again should use it.
Must not import grpc.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from . import values, wire


class JsonInputError(ValueError):
    """Text that is not an item (or key, or values) in the expected JSON form."""


def _parse(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as error:
        raise JsonInputError(f"not JSON: {error}") from None


def _plain_text(value: Any) -> str:
    """JSON text of a Python value from values.from_item, numbers exactly as stored."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return json.dumps(base64.b64encode(value).decode("ascii"))
    if isinstance(value, dict):
        # Sorted: protobuf maps have no order, and stable output diffs well.
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)}: {_plain_text(v)}" for k, v in sorted(value.items())
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_plain_text(v) for v in value) + "]"
    if isinstance(value, set | frozenset):
        return "[" + ", ".join(_plain_text(v) for v in sorted(value)) + "]"
    raise TypeError(type(value).__name__)


def _decode_binary(value: Any) -> Any:
    """DynamoDB JSON carries binary as base64 text; the wire shape wants bytes."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise JsonInputError(f'{value!r} is not a DynamoDB JSON value such as {{"S": "text"}}')
    ((kind, data),) = value.items()
    try:
        if kind == "B":
            return {"B": base64.b64decode(data, validate=True)}
        if kind == "BS":
            return {"BS": [base64.b64decode(v, validate=True) for v in data]}
    except (binascii.Error, TypeError):
        raise JsonInputError(f"{kind} values are base64 text") from None
    if kind == "M":
        return {"M": {k: _decode_binary(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [_decode_binary(v) for v in data]}
    return value


def _encode_binary(value: Any) -> Any:
    ((kind, data),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(data).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(v).decode("ascii") for v in data]}
    if kind == "M":
        return {"M": {k: _encode_binary(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [_encode_binary(v) for v in data]}
    return value


class ItemJson:
    """Reads and writes items in one of the two JSON forms."""

    def __init__(self, dynamodb_json: bool = False) -> None:
        self.dynamodb_json = dynamodb_json

    def fill(self, target: Any, text_or_object: str | Mapping[str, Any]) -> None:
        """Fills a map<string, AttributeValue> from JSON text (or an already parsed object)."""
        obj = _parse(text_or_object) if isinstance(text_or_object, str) else text_or_object
        if not isinstance(obj, Mapping):
            raise JsonInputError("an item is a JSON object")
        try:
            if self.dynamodb_json:
                fill_key_from_json(target, obj)
            else:
                values.fill_item(target, obj)
        except (TypeError, ValueError) as error:
            raise JsonInputError(str(error)) from None

    def dumps(self, item: Mapping[str, Any]) -> str:
        """One line of JSON for a map<string, AttributeValue>."""
        if self.dynamodb_json:
            return json.dumps(key_to_json(item), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return _plain_text(values.from_item(item))

    @staticmethod
    def names(text: str | None) -> dict[str, str]:
        """ExpressionAttributeNames: always a plain JSON object of strings."""
        if not text:
            return {}
        obj = _parse(text)
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise JsonInputError('names are a JSON object of strings, e.g. {"#n": "name"}')
        return obj


def key_to_json(key: Mapping[str, Any]) -> Any:
    """A resume key as lossless JSON (DynamoDB JSON with base64 binary), for state files."""
    return {name: _encode_binary(v) for name, v in wire.item_to_wire(key).items()}


def fill_key_from_json(target: Any, obj: Mapping[str, Any]) -> None:
    wire.fill_item(target, {name: _decode_binary(v) for name, v in obj.items()})
