"""Consumed capacity for every call, whether or not the caller asked for it.

Owns ConsumedCapacityBackend, the stage that adds ReturnConsumedCapacity=TOTAL to
requests that lack it and takes it out of the response again when the caller did
not ask (so the metrics, which sit inside it, see every call's capacity), and
summing what DynamoDB reports per table. Must not import gRPC or OpenTelemetry.
"""

from __future__ import annotations

from typing import Any

from ..backends import DynamoBackend

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


class ConsumedCapacityBackend:
    """Asks DynamoDB for the capacity every call consumed; the caller sees it only if it asked."""

    def __init__(self, inner: DynamoBackend) -> None:
        self.inner = inner

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        sent, caller_asked = with_capacity_requested(operation, params)
        return strip_unasked(await self.inner.call(operation, sent), caller_asked)

    async def close(self) -> None:
        await self.inner.close()
