"""Small helpers to build protobuf requests from Python values in tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamo_gateway.values import fill_item, from_item


def item_map(target: Any, values: Mapping[str, Any]) -> None:
    """Fills a protobuf map<string, AttributeValue> from Python values."""
    fill_item(target, values)


def py(item: Any) -> dict[str, Any]:
    """A protobuf item map (or Item message) as Python values."""
    return from_item(getattr(item, "attributes", item))


def status_details(error: Any) -> dict[str, Any]:
    """Decodes an AioRpcError's google.rpc.Status details by type name."""
    from google.rpc import error_details_pb2, status_pb2

    from dynamo_gateway.v1 import errors_pb2

    types = {
        "google.rpc.ErrorInfo": error_details_pb2.ErrorInfo,
        "google.rpc.BadRequest": error_details_pb2.BadRequest,
        "google.rpc.RetryInfo": error_details_pb2.RetryInfo,
        "dynamo_gateway.v1.ConditionalCheckFailure": errors_pb2.ConditionalCheckFailure,
        "dynamo_gateway.v1.TransactionCancellation": errors_pb2.TransactionCancellation,
        "dynamo_gateway.v1.VersionConflict": errors_pb2.VersionConflict,
        "dynamo_gateway.v1.OutcomeUnknown": errors_pb2.OutcomeUnknown,
        "dynamo_gateway.v1.ScanInterrupted": errors_pb2.ScanInterrupted,
    }
    details: dict[str, Any] = {}
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                name = detail.type_url.rsplit("/", 1)[-1]
                message = types[name]()
                detail.Unpack(message)
                details[name] = message
    return details
