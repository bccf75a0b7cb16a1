"""A request botocore's validator never saw (`Config(parameter_validation=False)`), answered as
DynamoDB answers it.

boto3 with parameter_validation=False sends whatever it is given and DynamoDB refuses what
it cannot take, in two steps: its JSON reader first (a value of the wrong type is a
SerializationException: "STRING_VALUE can not be converted to an Integer"), then its
constraints, all at once ("1 validation error detected: Value '0' at 'limit' failed to
satisfy constraint: Member must have value greater than or equal to 1"). The facade cannot
send such values at all (protobuf fields have types, and the gateway's Limit 0 means "no
limit"), so `checked()` gives DynamoDB's two answers itself, walking botocore's own model of
the operation. What the facade and the gateway already refuse in DynamoDB's words later on
(table names, enum values, batch and transaction sizes, attribute values) is left to them.

A value JSON cannot carry (bytes outside a binary, arbitrary objects) never reaches DynamoDB:
boto3 itself fails with a TypeError from its JSON encoder. The facade raises botocore's
ParamValidationError for it instead, as with validation on. Pure: no I/O, no grpc.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ParamValidationError
from botocore.model import ListShape, MapShape, Shape, StructureShape

from .. import dynamodb_messages as messages
from . import _model
from ._failures import LocalValidationError

SERIALIZATION = "SerializationException"
# Members whose constraints the facade or the gateway check later, in DynamoDB's words
# (dynamodb_messages: table names, batch and transaction sizes); enums are _translate's.
_CHECKED_LATER = frozenset({"TableName", "RequestItems", "Keys", "TransactItems"})
# DynamoDB's validation framework reports at most this many constraint failures at once.
_MAX_REPORTED = 10
_BOOLEAN_TEXT = {"true": True, "false": False}
_SEQUENCES = (list, tuple, set, frozenset)


def checked(operation_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` as DynamoDB reads them (members set to None are absent; "true"/"false" text is a
    boolean), or raises DynamoDB's SerializationException / ValidationException as
    LocalValidationError."""
    shape = _model.input_shape(operation_name)
    read: dict[str, Any] = _read(shape, params, operation_name)
    broken = list(_constraints(shape, read, ""))
    if broken:
        raise LocalValidationError(messages.validation_errors(broken[:_MAX_REPORTED]))
    return read


# ---------------------------------------------------------------- step 1: the JSON reader


def _serialization(message: str) -> LocalValidationError:
    return LocalValidationError(message, code=SERIALIZATION)


def _token(value: Any) -> str:
    """The JSON reader's name for a scalar it did not expect."""
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, int):
        return "NUMBER_VALUE"
    if isinstance(value, float):
        return "DECIMAL_VALUE"
    return "STRING_VALUE"


def _unsendable(value: Any, where: str) -> ParamValidationError:
    return ParamValidationError(
        report=f"Invalid type for parameter {where}, value: {value!r}, type: {type(value)}: "
        "it cannot be sent as JSON"
    )


def _container_mismatch(value: Any) -> LocalValidationError | None:
    if isinstance(value, Mapping):
        return _serialization(messages.START_OF_MAP)
    if isinstance(value, _SEQUENCES):
        return _serialization(messages.START_OF_LIST)
    return None


def _expect_mapping(value: Any, where: str) -> None:
    """Structures and maps arrive as JSON objects; anything else gets DynamoDB's refusal."""
    if isinstance(value, Mapping):
        return
    if isinstance(value, _SEQUENCES):
        raise _serialization(messages.START_OF_LIST)
    if isinstance(value, str | int | float):
        raise _serialization(messages.EXPECTED_STRUCTURE)
    raise _unsendable(value, where)


def _read(shape: Shape, value: Any, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        _expect_mapping(value, where)
        read = {}
        for name, member in value.items():
            if member is None:
                continue  # JSON null: the member is absent
            inner = shape.members.get(name)
            # Unknown members go on unchanged: _translate says the gateway does not serve them.
            read[name] = member if inner is None else _read(inner, member, f"{where}.{name}")
        return read
    if kind == "map":
        assert isinstance(shape, MapShape)
        _expect_mapping(value, where)
        return {key: _read(shape.value, member, f"{where}.{key}") for key, member in value.items()}
    if kind == "list":
        assert isinstance(shape, ListShape)
        if isinstance(value, Mapping):
            raise _serialization(messages.START_OF_MAP)
        if not isinstance(value, _SEQUENCES):
            if isinstance(value, str | int | float):
                raise _serialization(messages.EXPECTED_LIST)
            raise _unsendable(value, where)
        return [_read(shape.member, member, f"{where}[{index}]") for index, member in enumerate(value)]
    return _scalar(kind, value, where)


def _scalar(kind: str, value: Any, where: str) -> Any:
    mismatch = _container_mismatch(value)
    if mismatch is not None:
        raise mismatch
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            raise _serialization(messages.cannot_convert(_token(value), "String"))
    elif kind in ("integer", "long"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str | float | bool):
            raise _serialization(
                messages.cannot_convert(_token(value), "Integer" if kind == "integer" else "Long")
            )
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOLEAN_TEXT:
            return _BOOLEAN_TEXT[value.lower()]
        if isinstance(value, str | int | float):
            raise _serialization(messages.cannot_convert(_token(value), "Boolean"))
    elif kind == "blob":
        if isinstance(value, bytes | bytearray | str):
            return value
        if isinstance(value, int | float):
            raise _serialization(messages.NOT_BASE64)
    else:
        return value  # no other kind appears in DynamoDB's data-plane requests
    raise _unsendable(value, where)


# ---------------------------------------------------------------- step 2: the constraints


def _path(parent: str, name: str) -> str:
    return f"{parent}.{messages.camel(name)}" if parent else messages.camel(name)


def _constraints(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """DynamoDB's constraint failures in `value` (already read), in the model's member order."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        for name in shape.required_members:
            if name not in value:
                yield messages.constraint(_path(path, name), messages.MUST_NOT_BE_NULL)
        for name, member in shape.members.items():
            if name in value:
                yield from _member_constraints(name, member, value[name], _path(path, name))
    elif kind == "list":
        assert isinstance(shape, ListShape)
        for index, element in enumerate(value):
            yield from _constraints(shape.member, element, f"{path}.{index + 1}.member")
    elif kind == "map":
        assert isinstance(shape, MapShape)
        for key, element in value.items():
            yield from _constraints(shape.value, element, f"{path}.{key}.member")


def _member_constraints(name: str, shape: Shape, value: Any, path: str) -> Iterator[str]:
    metadata = shape.metadata
    if name not in _CHECKED_LATER:
        kind = shape.type_name
        if kind in ("integer", "long"):
            if "min" in metadata and value < metadata["min"]:
                yield messages.constraint(path, messages.min_value(metadata["min"]), value)
            if "max" in metadata and value > metadata["max"]:
                yield messages.constraint(path, messages.max_value(metadata["max"]), value)
        elif kind in ("string", "list", "map"):
            yield from _length(shape, value, path)
    yield from _constraints(shape, value, path)


def _length(shape: Shape, value: Any, path: str) -> Iterator[str]:
    metadata = shape.metadata
    shown: Any = value
    if isinstance(shape, ListShape):
        shown = messages.elided_list(len(value), shape.member.name)
    elif isinstance(shape, MapShape):
        shown = messages.elided_map((key, "...") for key in value)
    if "min" in metadata and len(value) < metadata["min"]:
        yield messages.constraint(path, messages.min_length(metadata["min"]), shown)
    if "max" in metadata and len(value) > metadata["max"]:
        yield messages.constraint(path, messages.max_length(metadata["max"]), shown)
    if "pattern" in metadata and isinstance(value, str) and not re.fullmatch(metadata["pattern"], value):
        yield messages.constraint(path, messages.pattern(metadata["pattern"]), value)
