"""What telemetry says about one DynamoDB call: span name, attributes, tables, items, outcome.

Owns the per-operation knowledge (names as the spec gives them, which request
fields become attributes, how each response counts items and unprocessed work).
What a failure means is failures.py's. Pure functions; must not import gRPC or OpenTelemetry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .. import request_shape
from ..backends import BackendError
from ..key_schema import KeySchema, query_partition_value
from .keys import KeyRenderer

SPAN_NAMES = {
    "GetItem": "dynamodb.get_item",
    "PutItem": "dynamodb.put_item",
    "UpdateItem": "dynamodb.update_item",
    "DeleteItem": "dynamodb.delete_item",
    "Query": "dynamodb.query",
    "Scan": "dynamodb.scan",
    "BatchGetItem": "dynamodb.batch_get",
    "BatchWriteItem": "dynamodb.batch_write",
    "TransactGetItems": "dynamodb.transact_get",
    "TransactWriteItems": "dynamodb.transact_write",
}
# Span attribute names are the spec's, under one namespace.
ATTRIBUTE_PREFIX = "dynamodb."


def span_name(operation: str) -> str:
    known = SPAN_NAMES.get(operation)
    if known:
        return known
    return "dynamodb." + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def request_attributes(
    operation: str,
    params: dict[str, Any],
    schema: Callable[[str], KeySchema | None],
    keys: KeyRenderer,
) -> dict[str, Any]:
    """The spec's attributes for the operation's span (key values rendered per the key mode)."""
    p = ATTRIBUTE_PREFIX
    tables = request_shape.tables(operation, params)
    attributes: dict[str, Any] = {
        "db.system": "dynamodb",
        "db.operation": operation,
        p + "table": ",".join(tables),
    }

    def key_attributes(item: dict[str, Any]) -> None:
        known = schema(tables[0])
        if known is None and len(item) == 1:  # a lone key attribute can only be the partition key
            known = KeySchema(next(iter(item)))
        if known is None:
            return
        for name, attribute in (("pk", known.partition), ("sk", known.sort)):
            rendered = keys.render(item.get(attribute)) if attribute else None
            if rendered is not None:
                attributes[p + name] = rendered

    if operation == "GetItem":
        key_attributes(params.get("Key", {}))
        attributes[p + "consistent_read"] = bool(params.get("ConsistentRead", False))
    elif operation == "PutItem":
        key_attributes(params.get("Item", {}))
        attributes[p + "condition"] = params.get("ConditionExpression", "")
    elif operation == "UpdateItem":
        key_attributes(params.get("Key", {}))
        attributes[p + "update_expr"] = params.get("UpdateExpression", "")
    elif operation == "DeleteItem":
        key_attributes(params.get("Key", {}))
    elif operation == "Query":
        attributes[p + "index"] = params.get("IndexName", "")
        known = schema(tables[0])
        rendered = keys.render(query_partition_value(params, known)) if known else None
        if rendered is not None:
            attributes[p + "pk"] = rendered
        attributes[p + "limit"] = int(params.get("Limit", 0))
    elif operation == "Scan":
        attributes[p + "segment"] = int(params.get("Segment", 0))
        attributes[p + "total_segments"] = int(params.get("TotalSegments", 1))
    elif operation == "BatchGetItem":
        parts = request_shape.walk(operation, params)
        attributes[p + "item_count"] = sum(part.kind == request_shape.KEY for part in parts)
    elif operation == "BatchWriteItem":
        kinds = [part.kind for part in request_shape.walk(operation, params)]
        attributes[p + "put_count"] = kinds.count(request_shape.ITEM)  # a put carries an item
        attributes[p + "delete_count"] = kinds.count(request_shape.KEY)  # a delete, a key
    elif operation in ("TransactGetItems", "TransactWriteItems"):
        del attributes[p + "table"]
        attributes[p + "item_count"] = len(params.get("TransactItems", ()))
        attributes[p + "tables"] = list(tables)
    return attributes


def items_returned(operation: str, params: dict[str, Any], response: dict[str, Any]) -> dict[str, int]:
    """Items a read returned, per table; empty for writes."""
    if operation == "GetItem":
        return {params.get("TableName", ""): int("Item" in response)}
    if operation in ("Query", "Scan"):
        return {params.get("TableName", ""): int(response.get("Count", len(response.get("Items", ()))))}
    if operation == "BatchGetItem":
        returned = response.get("Responses", {})
        return {table: len(returned.get(table, ())) for table in _action_tables(operation, params)}
    if operation == "TransactGetItems":
        counts: dict[str, int] = {}
        for table, result in zip(
            _action_tables(operation, params), response.get("Responses", ()), strict=False
        ):
            counts[table] = counts.get(table, 0) + int(bool(result.get("Item")))
        return counts
    return {}


def _action_tables(operation: str, params: dict[str, Any]) -> list[str]:
    """The table of each of a batch's tables or a transaction's actions, in request order."""
    return [part.table for part in request_shape.walk(operation, params) if part.kind == request_shape.TABLE]


def unprocessed_items(operation: str, response: dict[str, Any]) -> dict[str, int]:
    """Requests a batch left for the caller to send again, per table."""
    if operation == "BatchWriteItem":
        return {
            table: len(writes) for table, writes in response.get("UnprocessedItems", {}).items() if writes
        }
    if operation == "BatchGetItem":
        unprocessed = response.get("UnprocessedKeys", {})
        return {
            table: len(request.get("Keys", ()))
            for table, request in unprocessed.items()
            if request.get("Keys")
        }
    return {}


def condition_failures(operation: str, params: dict[str, Any], error: BaseException) -> dict[str, int]:
    """Failed conditions per table: the call's own, or each cancelled transaction item's."""
    if not isinstance(error, BackendError):
        return {}
    if error.code == "ConditionalCheckFailedException":
        return {params.get("TableName", ""): 1}
    if error.code != "TransactionCanceledException":
        return {}
    counts: dict[str, int] = {}
    for table, reason in zip(_action_tables(operation, params), error.cancellation_reasons, strict=False):
        if reason.get("Code") == "ConditionalCheckFailed":
            counts[table] = counts.get(table, 0) + 1
    return counts
