"""Renders any failure as a google.rpc.Status: the one place a failure becomes what the caller sees.

`status_of(error, table)` takes every failure an RPC can end with (the codec's and
the limits' InvalidRequestError, a refused or unauthenticated caller, a request
too large or over the in-flight limits, DynamoDB's answers, the resilience
layer's deadline, open circuit and unknown outcome) and anything else as a bug
(INTERNAL, saying nothing of the cause). Every status has exactly one ErrorInfo
(reason = the taxonomy leaf, domain = ERROR_DOMAIN, small fixed metadata such as
the AWS error code, request id, table, and for the gateway's own refusals that DynamoDB
makes too, DynamoDB's words), RetryInfo on retryable failures,
BadRequest for invalid input, and our typed details (old item, cancellation
reasons, unknown outcome). What a failure means is failures.py's; this module
only draws it. Pure protobuf: must not import grpc, the servicer or do I/O.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf import any_pb2, duration_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from dynamo_gateway.taxonomy import BY_REASON, Leaf
from dynamo_gateway.v1 import errors_pb2, service_pb2

from . import codec
from .backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    OutcomeUnknownError,
)
from .failures import is_retryable, leaf_of
from .observability.request_context import current_request_id
from .security.auth import Unauthenticated
from .security.limits import ConcurrencyLimitExceeded, RequestTooLarge
from .security.policy import PermissionDenied
from .versions import VersionConflictError

log = logging.getLogger(__name__)

ERROR_DOMAIN = "dynamo-gateway"
# Suggested wait when a retryable error carries no better estimate.
DEFAULT_RETRY_AFTER_S = 0.1
# What a caller turned away for concurrency is told to wait: long enough for a busy RPC to finish.
CONCURRENCY_RETRY_AFTER_S = 0.1


def status_of(error: BaseException, table: str = "") -> status_pb2.Status:
    """The status an RPC ends with for `error`; `table` is the request's, for ErrorInfo."""
    render = _RENDERERS.get(type(error))
    if render is not None:
        return render(error, table)
    for kind, render in _RENDERERS.items():  # subclasses, e.g. a test's
        if isinstance(error, kind):
            return render(error, table)
    # A bug. The RPC's own id (the one on its log lines), when the interceptor set one.
    request_id = current_request_id() or uuid.uuid4().hex
    log.error("unexpected error (request id %s)", request_id, exc_info=error)
    return internal(request_id)


def code_number(leaf: Leaf) -> int:
    """The google.rpc.Code number of a leaf (the same numbers as grpc.StatusCode)."""
    return int(getattr(code_pb2, leaf.grpc_code))


def _pack(detail: message.Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def make_status(leaf: Leaf, text: str, details: Iterable[message.Message]) -> status_pb2.Status:
    return status_pb2.Status(code=code_number(leaf), message=text, details=[_pack(d) for d in details])


def error_info(leaf: Leaf, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(
        reason=leaf.reason, domain=ERROR_DOMAIN, metadata={k: v for k, v in metadata.items() if v}
    )


def retry_info(after_s: float | None) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int((after_s if after_s is not None else DEFAULT_RETRY_AFTER_S) * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _payload_details(error: BackendError) -> list[message.Message]:
    if error.code == "ConditionalCheckFailedException":
        failure = errors_pb2.ConditionalCheckFailure()
        codec.fill_item(failure.item, error.item or {})
        return [failure]
    if error.code == "TransactionCanceledException":
        cancellation = errors_pb2.TransactionCancellation()
        for reason in error.cancellation_reasons:
            entry = cancellation.reasons.add(code=reason.get("Code", ""), message=reason.get("Message", ""))
            codec.fill_item(entry.item, reason.get("Item", {}))
        return [cancellation]
    return []


def from_backend_error(error: BackendError | BackendUnavailableError, table: str = "") -> status_pb2.Status:
    leaf = leaf_of(error)
    if isinstance(error, BackendError):
        info = error_info(leaf, aws_error_code=error.code, aws_request_id=error.request_id, table=table)
        details: list[message.Message] = [info, *_payload_details(error)]
        text = error.message or error.code
    else:
        details = [error_info(leaf, failure=error.reason, table=table)]
        text = error.message
    if is_retryable(error):
        details.append(retry_info(error.retry_after_s))
    return make_status(leaf, text, details)


def from_invalid_request(error: codec.InvalidRequestError) -> status_pb2.Status:
    violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.description)
    leaf = BY_REASON[error.reason]
    # dynamodb_message: DynamoDB's own words where DynamoDB refuses the same request, for callers
    # (the boto3 facade) that must answer exactly as DynamoDB does without parsing the description.
    info = error_info(leaf, field=error.field, dynamodb_message=error.dynamodb_message)
    return make_status(
        leaf,
        f"invalid {error.field}: {error.description}",
        [info, error_details_pb2.BadRequest(field_violations=[violation])],
    )


def from_deadline(error: DeadlineExceededError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Service.DeadlineExceeded"]
    last = error.last_error
    text = "the deadline left no time for DynamoDB to answer"
    metadata = {"table": table}
    if last is not None:
        text += f" (last attempt: {last})"
        metadata["last_failure"] = leaf_of(last).reason
    return make_status(leaf, text, [error_info(leaf, **metadata), retry_info(None)])


def from_circuit_open(error: CircuitOpenError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Service.ServiceUnavailable"]
    return make_status(
        leaf,
        "DynamoDB is failing: the gateway's circuit breaker is open, failing fast",
        [error_info(leaf, circuit="open", table=table), retry_info(error.retry_after_s)],
    )


def from_outcome_unknown(error: OutcomeUnknownError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Service.ServiceUnavailable"]
    cause = error.cause
    metadata = {"table": table, "outcome": "unknown"}
    if isinstance(cause, BackendError):
        metadata["aws_error_code"] = cause.code
        metadata["aws_request_id"] = cause.request_id
    else:
        metadata["failure"] = cause.reason
    return make_status(
        leaf,
        f"{error.operation} may or may not have been applied ({error.why_unsafe}); read before retrying",
        [
            error_info(leaf, **metadata),
            errors_pb2.OutcomeUnknown(operation=error.operation, reason=error.why_unsafe),
            retry_info(error.retry_after_s),
        ],
    )


def from_version_conflict(error: VersionConflictError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["ConditionalCheck.VersionConflict"]
    detail = errors_pb2.VersionConflict(table_name=error.table, action_index=error.action_index)
    codec.fill_item(detail.key, error.key)
    codec.fill_item(detail.current_item, error.current_item or {})
    if error.expected is not None:
        detail.expected_version = error.expected
    if error.current_version is not None:
        detail.current_version = error.current_version
    metadata = {
        "table": error.table,
        "expected_version": "absent" if error.expected is None else str(error.expected),
        "current_version": "" if error.current_version is None else str(error.current_version),
    }
    return make_status(leaf, str(error), [error_info(leaf, **metadata), detail])


class ScanInterruptedError(Exception):
    """A ParallelScan stream cut short by the gateway's shutdown, with where each unfinished segment resumes."""

    def __init__(self, remaining: list[service_pb2.SegmentStart]) -> None:
        super().__init__(f"the gateway is shutting down; {len(remaining)} segments are unfinished")
        self.remaining = remaining


def from_scan_interrupted(error: ScanInterruptedError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Service.ServiceUnavailable"]
    return make_status(
        leaf,
        f"{error}: send the request again with the ScanInterrupted detail's segments to continue",
        [
            error_info(leaf, table=table, failure="ShuttingDown"),
            errors_pb2.ScanInterrupted(remaining=error.remaining),
            retry_info(0.0),  # another replica can take it at once
        ],
    )


def internal(request_id: str) -> status_pb2.Status:
    """For bugs: says nothing of the cause (it is in the log under the request id)."""
    leaf = BY_REASON["Service.Internal"]
    return make_status(
        leaf, f"internal error (request id {request_id})", [error_info(leaf, request_id=request_id)]
    )


def from_permission_denied(denied: PermissionDenied, table: str = "") -> status_pb2.Status:
    access = denied.access
    leaf = BY_REASON["Caller.PermissionDenied"]
    metadata = {"table": access.table, "operation": access.operation, "index": access.index or ""}
    return make_status(leaf, str(denied), [error_info(leaf, **metadata)])


def from_unauthenticated(failure: Unauthenticated, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Caller.Unauthenticated"]
    return make_status(leaf, failure.message, [error_info(leaf, failure=failure.failure)])


def from_request_too_large(error: RequestTooLarge, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Caller.RequestTooLarge"]
    metadata = {"limit_bytes": str(error.limit), "size_bytes": str(error.size)}
    return make_status(leaf, str(error), [error_info(leaf, **metadata)])


def from_concurrency_limit(error: ConcurrencyLimitExceeded, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Caller.ConcurrencyLimitExceeded"]
    return make_status(
        leaf,
        str(error),
        [
            error_info(leaf, scope=error.scope, limit=str(error.limit)),
            retry_info(CONCURRENCY_RETRY_AFTER_S),
        ],
    )


# Failure type -> its renderer; anything else is a bug (INTERNAL).
_RENDERERS: dict[type[BaseException], Callable[[Any, str], status_pb2.Status]] = {
    codec.InvalidRequestError: lambda error, table: from_invalid_request(error),
    PermissionDenied: from_permission_denied,
    Unauthenticated: from_unauthenticated,
    RequestTooLarge: from_request_too_large,
    ConcurrencyLimitExceeded: from_concurrency_limit,
    BackendError: from_backend_error,
    BackendUnavailableError: from_backend_error,
    DeadlineExceededError: from_deadline,
    CircuitOpenError: from_circuit_open,
    OutcomeUnknownError: from_outcome_unknown,
    VersionConflictError: from_version_conflict,
    ScanInterruptedError: from_scan_interrupted,
}
