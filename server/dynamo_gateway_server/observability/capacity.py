"""Consumed capacity for every call, whether or not the caller asked for it.

Owns: adding ReturnConsumedCapacity=TOTAL to requests that lack it, summing what
DynamoDB reports per table, and taking it out of the response again when the
caller did not ask. Pure functions on DynamoDB's request and response shapes.
"""

from __future__ import annotations

from typing import Any

# The operations that accept ReturnConsumedCapacity.
SUPPORTED = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_ASKED = ("TOTAL", "INDEXES")


def with_capacity_requested(operation: str, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(params to send, whether the caller asked for capacity itself). Never mutates params."""
    if operation not in SUPPORTED:
        return params, True
    if params.get("ReturnConsumedCapacity") in _ASKED:
        return params, True
    return {**params, "ReturnConsumedCapacity": "TOTAL"}, False


def _units(entry: dict[str, Any]) -> float:
    if "CapacityUnits" in entry:
        return float(entry["CapacityUnits"])
    return float(entry.get("ReadCapacityUnits", 0.0)) + float(entry.get("WriteCapacityUnits", 0.0))


def consumed_by_table(response: dict[str, Any]) -> dict[str, float]:
    """Capacity units per table; batch and transaction responses list one entry per table."""
    reported = response.get("ConsumedCapacity")
    entries = reported if isinstance(reported, list) else [reported] if reported else []
    totals: dict[str, float] = {}
    for entry in entries:
        table = entry.get("TableName", "")
        totals[table] = totals.get(table, 0.0) + _units(entry)
    return totals


def strip_unasked(response: dict[str, Any], caller_asked: bool) -> dict[str, Any]:
    if caller_asked or "ConsumedCapacity" not in response:
        return response
    stripped = dict(response)  # a copy: the backend may hand out a response it keeps
    del stripped["ConsumedCapacity"]
    return stripped
