"""DynamoDB's first checks of a request, with DynamoDB's own messages.

DynamoDB refuses some requests before looking at any table: malformed values
(numbers beyond 38 digits, empty or duplicate sets, NULL false, no or two types)
and table names it cannot have. The gateway refuses the same requests, but in
words of its own; checking them here first gives boto3 callers DynamoDB's
ValidationException text. Pure functions raising LocalValidationError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from ._failures import LocalValidationError

_TABLE_PATTERN = "[a-zA-Z0-9_.-]+"
# Wide enough that normalising never rounds a number DynamoDB could hold (38 digits).
_EXACT = Context(prec=100)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def table_name(name: str, field: str = "tableName") -> None:
    """As DynamoDB: pattern, then length; ARNs are left to the gateway."""
    if name.startswith("arn:"):
        return
    errors = []
    if not re.fullmatch(_TABLE_PATTERN, name):
        errors.append(f"Member must satisfy regular expression pattern: {_TABLE_PATTERN}")
    if len(name) < 3:
        errors.append("Member must have length greater than or equal to 3")
    if len(name) > 255:
        errors.append("Member must have length less than or equal to 255")
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise LocalValidationError(
            count
            + "; ".join(f"Value '{name}' at '{field}' failed to satisfy constraint: {e}" for e in errors)
        )


def _number(text: str) -> Decimal:
    if not text:
        raise LocalValidationError("The parameter cannot be converted to a numeric value")
    if not _NUMBER.fullmatch(text):
        raise LocalValidationError(f"The parameter cannot be converted to a numeric value: {text}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise LocalValidationError(f"The parameter cannot be converted to a numeric value: {text}") from None
    if number.is_zero():
        return number
    exponent = number.adjusted()
    if exponent > 125:
        raise LocalValidationError(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        )
    if exponent < -130:
        raise LocalValidationError(
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        )
    if len(number.normalize(_EXACT).as_tuple().digits) > 38:
        raise LocalValidationError("Attempting to store more than 38 significant digits in a Number")
    return number


def _has_duplicate(members: Iterable[Any]) -> bool:
    seen: set[Any] = set()
    for member in members:
        if member in seen:
            return True
        seen.add(member)
    return False


def _listing(members: Iterable[Any]) -> str:
    return "[" + ", ".join(str(m) for m in members) + "]"


def value(wire: Mapping[str, Any]) -> None:
    """Raises DynamoDB's message if it would refuse this attribute value outright."""
    if not isinstance(wire, Mapping):
        return  # botocore's validator has already said what is wrong
    if not wire:
        raise LocalValidationError(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    for kind, data in wire.items():
        if kind == "N":
            _number(data)
        elif kind == "NULL" and not data:
            raise LocalValidationError(
                "One or more parameter values were invalid: Null attribute value types must have the value of true"
            )
        elif kind == "SS":
            if not data:
                raise LocalValidationError(
                    "One or more parameter values were invalid: An string set  may not be empty"
                )
            if _has_duplicate(data):
                raise LocalValidationError(
                    f"One or more parameter values were invalid: Input collection {_listing(data)} contains duplicates."
                )
        elif kind == "NS":
            if not data:
                raise LocalValidationError(
                    "One or more parameter values were invalid: An number set  may not be empty"
                )
            numbers = [_number(member) for member in data]
            if _has_duplicate(n.normalize(_EXACT) for n in numbers):
                raise LocalValidationError("Input collection contains duplicates")
        elif kind == "BS":
            if not data:
                raise LocalValidationError(
                    "One or more parameter values were invalid: Binary sets should not be empty"
                )
            if _has_duplicate(bytes(m) if not isinstance(m, str) else m.encode() for m in data):
                raise LocalValidationError(
                    f"One or more parameter values were invalid: Input collection {_listing(data)}of type BS "
                    "contains duplicates."
                )
        elif kind == "M":
            item(data)
        elif kind == "L":
            for element in data:
                value(element)
    if len(wire) > 1:
        raise LocalValidationError(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
            "supported datatypes"
        )


def item(wire: Mapping[str, Any]) -> None:
    for element in wire.values():
        value(element)
