"""Typed exceptions decoded from the gateway's google.rpc.Status details.

    GatewayError                      any failed call (code, message, reason, metadata)
    +-- InvalidRequestError           INVALID_ARGUMENT: our validation or DynamoDB's
    +-- ConditionalCheckFailedError   FAILED_PRECONDITION on a false condition (.item)
    +-- TableNotFoundError            NOT_FOUND
    +-- TransactionCanceledError      ABORTED with cancellation reasons (.reasons)
    +-- ThrottledError                RESOURCE_EXHAUSTED
    +-- BackendUnavailableError       UNAVAILABLE
    +-- PermissionDeniedError         PERMISSION_DENIED

from_rpc_error() is the one place that picks the most specific class. Must not
import the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from dynamo_gateway.v1 import errors_pb2

from .values import Item, from_item

_DETAILS_KEY = "grpc-status-details-bin"


class GatewayError(Exception):
    """A call the gateway answered with an error status."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        # The ErrorInfo reason: DynamoDB's error code, or INVALID_REQUEST for our validation.
        self.reason = reason
        self.metadata = metadata or {}
        # (field, description) pairs from a BadRequest detail.
        self.field_violations = field_violations or []


class InvalidRequestError(GatewayError):
    pass


class ConditionalCheckFailedError(GatewayError):
    # The item as it was, when the call asked for it (ALL_OLD); else None.
    item: Item | None = None


@dataclass(frozen=True)
class CancellationReason:
    code: str
    message: str = ""
    item: Item | None = field(default=None)


class TransactionCanceledError(GatewayError):
    reasons: list[CancellationReason]


class TableNotFoundError(GatewayError):
    pass


class ThrottledError(GatewayError):
    pass


class BackendUnavailableError(GatewayError):
    pass


class PermissionDeniedError(GatewayError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[GatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: TableNotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ThrottledError,
    grpc.StatusCode.UNAVAILABLE: BackendUnavailableError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
}


def _status_details(error: grpc.RpcError) -> status_pb2.Status | None:
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == _DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return None


def from_rpc_error(error: grpc.RpcError) -> GatewayError:
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    message: str = error.details() or ""  # type: ignore[attr-defined]
    status = _status_details(error)
    info = error_details_pb2.ErrorInfo()
    bad_request = error_details_pb2.BadRequest()
    condition = errors_pb2.ConditionalCheckFailure()
    cancellation: errors_pb2.TransactionCancellation | None = None
    has_condition = False
    for detail in status.details if status else ():
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(bad_request.DESCRIPTOR):
            detail.Unpack(bad_request)
        elif detail.Is(condition.DESCRIPTOR):
            detail.Unpack(condition)
            has_condition = True
        elif detail.Is(errors_pb2.TransactionCancellation.DESCRIPTOR):
            cancellation = errors_pb2.TransactionCancellation()
            detail.Unpack(cancellation)
    arguments: dict[str, Any] = {
        "reason": info.reason,
        "metadata": dict(info.metadata),
        "field_violations": [(v.field, v.description) for v in bad_request.field_violations],
    }
    if has_condition or info.reason == "ConditionalCheckFailedException":
        result = ConditionalCheckFailedError(code, message, **arguments)
        result.item = from_item(condition.item) if condition.item else None
        return result
    if cancellation is not None:
        canceled = TransactionCanceledError(code, message, **arguments)
        canceled.reasons = [
            CancellationReason(r.code, r.message, from_item(r.item) if r.item else None)
            for r in cancellation.reasons
        ]
        return canceled
    return _BY_CODE.get(code, GatewayError)(code, message, **arguments)
