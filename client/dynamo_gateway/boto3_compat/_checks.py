"""DynamoDB's first checks of a request, with DynamoDB's own messages.

DynamoDB refuses some requests before looking at any table: malformed values
(numbers beyond 38 digits, empty or duplicate sets, NULL false, no or two types)
and table names it cannot have. The gateway refuses the same requests with the
same words (both take them from dynamo_gateway.dynamodb_messages); checking them
here first also words them as each operation does (the envelope DynamoDB puts on
empty sets in some operations) and saves a round trip. Pure functions raising
LocalValidationError.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from .. import dynamodb_messages as messages
from ._failures import LocalValidationError

# Wide enough that normalising never rounds a number DynamoDB could hold (38 digits).
_EXACT = Context(prec=100)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def table_name(name: str, field: str = "tableName") -> None:
    """As DynamoDB: pattern, then length; ARNs are left to the gateway."""
    if name.startswith("arn:"):
        return
    refusal = messages.table_name(name, field)
    if refusal is not None:
        raise LocalValidationError(refusal)


def _number(text: str) -> Decimal:
    if not text or not _NUMBER.fullmatch(text):
        raise LocalValidationError(messages.not_a_number(text))
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise LocalValidationError(messages.not_a_number(text)) from None
    if number.is_zero():
        return number
    exponent = number.adjusted()
    if exponent > 125:
        raise LocalValidationError(messages.NUMBER_OVERFLOW)
    if exponent < -130:
        raise LocalValidationError(messages.NUMBER_UNDERFLOW)
    if len(number.normalize(_EXACT).as_tuple().digits) > 38:
        raise LocalValidationError(messages.NUMBER_TOO_PRECISE)
    return number


def _has_duplicate(members: Iterable[Any]) -> bool:
    seen: set[Any] = set()
    for member in members:
        if member in seen:
            return True
        seen.add(member)
    return False


def _binary(member: Any) -> bytes:
    return member.encode() if isinstance(member, str) else bytes(member)


def value(wire: Mapping[str, Any], family: str | None = None) -> None:
    """Raises DynamoDB's message if it would refuse this attribute value outright.

    `family`: the envelope family (dynamodb_messages.ENVELOPED) of an empty set here.
    """
    if not isinstance(wire, Mapping):
        return  # botocore's validator has already said what is wrong
    if not wire:
        raise LocalValidationError(messages.EMPTY_VALUE)
    for kind, data in wire.items():
        if kind == "N":
            _number(data)
        elif kind == "NULL" and not data:
            raise LocalValidationError(messages.NULL_NOT_TRUE)
        elif kind in messages.EMPTY_SETS and not data:
            raise LocalValidationError(messages.EMPTY_SETS[kind], family=family)
        elif kind == "SS":
            if _has_duplicate(data):
                raise LocalValidationError(messages.string_set_duplicates(data))
        elif kind == "NS":
            numbers = [_number(member) for member in data]
            if _has_duplicate(n.normalize(_EXACT) for n in numbers):
                raise LocalValidationError(messages.NUMBER_SET_DUPLICATES)
        elif kind == "BS":
            members = [_binary(m) for m in data]
            if _has_duplicate(members):
                # DynamoDB quotes the members as the base64 text it read.
                raise LocalValidationError(
                    messages.binary_set_duplicates(base64.b64encode(m).decode() for m in members)
                )
        elif kind == "M":
            item(data, family)
        elif kind == "L":
            for element in data:
                value(element, family)
    if len(wire) > 1:
        raise LocalValidationError(messages.TWO_TYPES)


def item(wire: Mapping[str, Any], family: str | None = None) -> None:
    for element in wire.values():
        value(element, family)
