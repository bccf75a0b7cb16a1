"""TTL rules: a table's declared TTL attribute holds epoch seconds that DynamoDB will act on.

Sets it from a write's expiry options (expires_at, expires_in: `set_expiries`) and
checks what callers write into it themselves (`check`).

DynamoDB takes any number in a TTL attribute and silently never expires an item
whose value it cannot use: milliseconds or microseconds since the epoch (a date
thousands of years ahead) or a time more than five years in the past. TtlRules
refuses such values, naming the field, for the tables whose TTL attribute is
declared (the tables file's `ttl_attribute`): in every item a request writes
(PutItem, BatchWriteItem's puts, TransactWriteItems' puts) and in every update
expression that SETs the attribute to a value (`expires_at = :t`, or
`if_not_exists(expires_at, :t)`; arithmetic on the old value cannot be known
before DynamoDB applies it). Must not import gRPC; raises the codec's
InvalidRequestError.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .codec import Expiry, InvalidRequestError
from .made_here import noted, wall_time
from .request_shape import ITEM, TABLE, walk
from .update_expression import set_values, top_level_attributes, unused_placeholder, with_actions

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

    def __init__(self, attributes: Mapping[str, str], clock: Callable[[], float] = wall_time) -> None:
        """`attributes`: table -> its TTL attribute (shared: the gateway adds those it learns at
        startup); `clock`: the wall clock, in epoch seconds."""
        self._attributes = attributes
        self._clock = clock

    async def check(self, operation: str, params: Mapping[str, Any]) -> None:
        table = params.get("TableName")
        if not self._attributes or (table is not None and table not in self._attributes):
            return  # no table this request can touch declares one: nothing to look at
        for part in walk(operation, params):
            attribute = self._attributes.get(part.table)
            if attribute is None:
                continue
            if part.kind == ITEM:
                self._check_value(part.value.get(attribute), f"{part.field}.{attribute}")
            elif part.kind == TABLE and "UpdateExpression" in part.value:
                self._check_update(part.value, attribute, f"{part.field}." if part.field else "")

    def _check_update(self, holder: Mapping[str, Any], attribute: str, prefix: str) -> None:
        names = holder.get("ExpressionAttributeNames", {})
        values = holder.get("ExpressionAttributeValues", {})
        for name, placeholder in set_values(holder["UpdateExpression"], names):
            if name == attribute:
                field = f"{prefix}expression_attribute_values[{placeholder}]"
                self._check_value(values.get(placeholder), field)

    def _check_value(self, value: Mapping[str, Any] | None, field: str) -> None:
        if value is None or "N" not in value:
            return  # DynamoDB's TTL ignores anything but a number; so do we
        problem = ttl_problem(value["N"], self._clock())
        if problem is not None:
            raise InvalidRequestError(field, problem)

    def set_expiries(self, operation: str, params: dict[str, Any], expiries: Mapping[str, Expiry]) -> None:
        """Sets the TTL attribute of each item (or update) a write's expiry option applies to.

        `expiries` is keyed by where walk() finds the item or the update (codec.expiries).
        """
        now = self._clock()
        for part in walk(operation, params):
            expiry = expiries.get(part.field)
            if expiry is None or part.kind not in (ITEM, TABLE):
                continue
            attribute = self._attributes.get(part.table)
            if attribute is None:
                raise InvalidRequestError(
                    expiry.field, f"table {part.table} declares no ttl_attribute in the gateway's tables file"
                )
            if expiry.at_s is not None:
                seconds = str(math.ceil(expiry.at_s))
            else:  # never before the time asked for; made up here, so replay may differ
                seconds = noted(str(math.ceil(Decimal(now) + (expiry.after_s or 0))))
            problem = ttl_problem(seconds, now)
            if problem is not None:
                raise InvalidRequestError(expiry.field, problem)
            if part.kind == ITEM:
                if attribute in part.value:
                    raise InvalidRequestError(
                        expiry.field,
                        f"the item also sets {attribute}, the TTL attribute: set one or the other",
                    )
                part.value[attribute] = {"N": seconds}  # type: ignore[index]  # the codec's own dict
            else:
                _set_in_update(part.value, attribute, seconds, expiry.field)


def _set_in_update(holder: Any, attribute: str, seconds: str, field: str) -> None:
    """Adds `SET <attribute> = seconds` to an update's expression, with placeholders of its own."""
    names = dict(holder.get("ExpressionAttributeNames", {}))
    values = dict(holder.get("ExpressionAttributeValues", {}))
    if attribute in top_level_attributes(holder.get("UpdateExpression", ""), names):
        raise InvalidRequestError(
            field, f"the update expression also names {attribute}, the TTL attribute: set one or the other"
        )
    name, value = unused_placeholder("#dgw_ttl", names), unused_placeholder(":dgw_ttl", values)
    names[name], values[value] = attribute, {"N": seconds}
    holder["UpdateExpression"] = with_actions(holder.get("UpdateExpression", ""), [f"{name} = {value}"])
    holder["ExpressionAttributeNames"] = names
    holder["ExpressionAttributeValues"] = values
