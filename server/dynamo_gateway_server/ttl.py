"""TTL rules: a table's declared TTL attribute holds epoch seconds that DynamoDB will act on.

DynamoDB takes any number in a TTL attribute and silently never expires an item
whose value it cannot use: milliseconds or microseconds since the epoch (a date
thousands of years ahead) or a time more than five years in the past. TtlRules
refuses such values in every item a request writes (PutItem, BatchWriteItem's
puts, TransactWriteItems' puts), naming the field, for the tables whose TTL
attribute is declared (the tables file's `ttl_attribute`). Values written by an
UpdateItem expression are not checked yet. Must not import gRPC; raises the
codec's InvalidRequestError.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .codec import InvalidRequestError
from .request_shape import ITEM, walk

# Epoch seconds reach 10^11 in the year 5138, while milliseconds passed it in 1973:
# anything larger is not seconds.
LARGEST_SECONDS = 10**11
# DynamoDB's TTL process ignores items whose TTL is more than five years in the past.
OLDEST_S = 5 * 365 * 24 * 3600


def ttl_problem(text: str, now_s: float) -> str | None:
    """Why DynamoDB would never expire an item on this TTL number (None: it will)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None  # not a number DynamoDB took: the codec has said so already
    if value >= LARGEST_SECONDS:
        return (
            f"{text} is not a time in epoch seconds (it looks like milliseconds or microseconds); "
            "DynamoDB would never expire the item"
        )
    if value < Decimal(now_s - OLDEST_S):
        return f"{text} is more than five years in the past; DynamoDB's TTL ignores such items"
    return None


class TtlRules:
    """Checks the TTL attribute of the items a request writes, for the tables that declare one."""

    def __init__(self, attributes: Mapping[str, str], clock: Callable[[], float] = time.time) -> None:
        """`attributes`: table -> its TTL attribute; `clock`: the wall clock, in epoch seconds."""
        self._attributes = dict(attributes)
        self._clock = clock

    async def check(self, operation: str, params: Mapping[str, Any]) -> None:
        if not self._attributes:
            return  # no table declares one: nothing to look at
        for part in walk(operation, params):
            attribute = self._attributes.get(part.table) if part.kind == ITEM else None
            value = part.value.get(attribute) if attribute else None
            if value is None or "N" not in value:
                continue  # DynamoDB's TTL ignores anything but a number; so do we
            problem = ttl_problem(value["N"], self._clock())
            if problem is not None:
                raise InvalidRequestError(f"{part.field}.{attribute}", problem)
