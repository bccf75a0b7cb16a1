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
reasons, unknown outcome). Texts are made valid UTF-8 and cut short enough that
the status fits in trailers (bounded()); a renderer that fails is a bug too, never
left to gRPC. What a failure means is failures.py's; this module only draws it.
Pure protobuf: must not import grpc, the servicer or do I/O.
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
    ReplayMismatchError,
)
from .failures import is_retryable, leaf_of
from .global_tables import GlobalTableModeError
from .observability.request_context import current_request_id
from .security.auth import Unauthenticated
from .security.limits import ConcurrencyLimitExceeded, RequestTooLarge
from .security.policy import PermissionDenied
from .stopping import NotTakenError
from .versions import VersionConflictError

log = logging.getLogger(__name__)

ERROR_DOMAIN = "dynamo-gateway"
# Suggested wait when a retryable error carries no better estimate.
DEFAULT_RETRY_AFTER_S = 0.1
# What a caller turned away for concurrency is told to wait: long enough for a busy RPC to finish.
CONCURRENCY_RETRY_AFTER_S = 0.1
# A status travels in trailers, which gRPC clients refuse past 8 KB (some calls) or 16 KB (all).
# Text that may quote the request (a 70 KB attribute name in a field path, a table name in
# DynamoDB's words) is cut to these many UTF-8 bytes, so that the message (sent twice, once
# percent-encoded) and the copies in the details stay under 8 KB together. DynamoDB's own words
# get the most room: the boto3 facade answers with them, and they are exact up to that size.
MAX_DYNAMODB_WORDS_BYTES = 1280
MAX_MESSAGE_BYTES = 768
MAX_QUOTED_BYTES = 256
# Old items in details (a failed condition's, a cancelled transaction's, a version conflict's)
# are left out past this many bytes together, saying so: sent whole, a 400 KB item would make
# the caller's gRPC refuse the trailers, and it would get RESOURCE_EXHAUSTED and no detail at all.
MAX_ITEMS_BYTES = 4096


def bounded(text: str, limit: int = MAX_QUOTED_BYTES) -> str:
    """`text` as valid UTF-8, or its first `limit` bytes (whole characters) and how long it was.

    Emulators' messages may quote half of a surrogate pair (dynalite cuts an astral character
    in two), which protobuf cannot carry: it becomes "?".
    """
    encoded = text.encode(errors="replace")
    if len(encoded) <= limit:
        return encoded.decode()
    return f"{encoded[:limit].decode(errors='ignore')}... ({len(encoded)} bytes)"


def status_of(error: BaseException, table: str = "") -> status_pb2.Status:
    """The status an RPC ends with for `error`; `table` is the request's, for ErrorInfo."""
    render = _RENDERERS.get(type(error))
    if render is None:
        # Subclasses, e.g. a test's; else a bug.
        render = next((r for kind, r in _RENDERERS.items() if isinstance(error, kind)), _bug)
    try:
        return render(error, table)
    except Exception as rendering_bug:  # a renderer's bug must not become gRPC's UNKNOWN
        rendering_bug.__context__ = error
        return _bug(rendering_bug, table)


def _bug(error: BaseException, table: str = "") -> status_pb2.Status:
    # The RPC's own id (the one on its log lines), when the interceptor set one.
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
    details = list(details)
    _leave_out_large_items(details)
    return status_pb2.Status(
        code=code_number(leaf), message=bounded(text, MAX_MESSAGE_BYTES), details=[_pack(d) for d in details]
    )


def _leave_out_large_items(details: list[message.Message]) -> None:
    """Clears the old items in `details` when together they are over MAX_ITEMS_BYTES, and says so
    in the ErrorInfo (metadata items_omitted): the caller reads the item instead."""
    items: list[tuple[message.Message, str]] = []
    for detail in details:
        if isinstance(detail, errors_pb2.ConditionalCheckFailure):
            items.append((detail, "item"))
        elif isinstance(detail, errors_pb2.TransactionCancellation):
            items += [(reason, "item") for reason in detail.reasons]
        elif isinstance(detail, errors_pb2.VersionConflict):
            items.append((detail, "current_item"))
    size = sum(
        sum(value.ByteSize() + len(key) for key, value in getattr(holder, name).items())
        for holder, name in items
    )
    if size <= MAX_ITEMS_BYTES:
        return
    for holder, name in items:
        holder.ClearField(name)
    info = next((d for d in details if isinstance(d, error_details_pb2.ErrorInfo)), None)
    if info is not None:
        info.metadata["items_omitted"] = f"{size} bytes of items, over the {MAX_ITEMS_BYTES} an error carries"


def error_info(leaf: Leaf, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(
        reason=leaf.reason,
        domain=ERROR_DOMAIN,
        metadata={
            k: bounded(v, MAX_DYNAMODB_WORDS_BYTES if k == "dynamodb_message" else MAX_QUOTED_BYTES)
            for k, v in metadata.items()
            if v
        },
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
            entry = cancellation.reasons.add(
                code=reason.get("Code", ""), message=bounded(reason.get("Message", ""))
            )
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
    violation = error_details_pb2.BadRequest.FieldViolation(
        field=bounded(error.field), description=bounded(error.description, MAX_DYNAMODB_WORDS_BYTES)
    )
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
    # An item may hold any number as its version (a write that did not say it expected one):
    # past int64 it is left out of the detail, and the metadata below still says it.
    if error.current_version is not None and _fits_int64(error.current_version):
        detail.current_version = error.current_version
    metadata = {
        "table": error.table,
        "expected_version": "absent" if error.expected is None else str(error.expected),
        "current_version": "" if error.current_version is None else str(error.current_version),
    }
    return make_status(leaf, str(error), [error_info(leaf, **metadata), detail])


def _fits_int64(number: int) -> bool:
    return -(2**63) <= number < 2**63


class ScanInterruptedError(Exception):
    """A ParallelScan stream cut short by the gateway's shutdown, with where each unfinished segment resumes."""

    def __init__(self, remaining: list[service_pb2.SegmentStart], retry_after_s: float = 0.0) -> None:
        super().__init__(f"the gateway is shutting down; {len(remaining)} segments are unfinished")
        self.remaining = remaining
        self.retry_after_s = retry_after_s


def _scan_cut(
    leaf: Leaf,
    error: ScanInterruptedError | ReaderStalledError,
    retry_after_s: float,
    **metadata: str,
) -> status_pb2.Status:
    """A ParallelScan stream ended early, saying where each unfinished segment resumes."""
    return make_status(
        leaf,
        f"{error}: send the request again with the ScanInterrupted detail's segments to continue",
        [
            error_info(leaf, **metadata),
            errors_pb2.ScanInterrupted(remaining=error.remaining),
            retry_info(retry_after_s),
        ],
    )


def from_scan_interrupted(error: ScanInterruptedError, table: str = "") -> status_pb2.Status:
    # Until the listener closes, the caller's connection still leads here: retry after that.
    leaf = BY_REASON["Service.ServiceUnavailable"]
    return _scan_cut(leaf, error, error.retry_after_s, table=table, failure="ShuttingDown")


class ReaderStalledError(Exception):
    """A ParallelScan stream ended because its reader took no page for the stall timeout, with
    where each unfinished segment resumes (as ScanInterruptedError says it)."""

    def __init__(self, remaining: list[service_pb2.SegmentStart], stall_timeout_s: float) -> None:
        super().__init__(
            f"the reader took no page for {stall_timeout_s:g} s; {len(remaining)} segments are unfinished"
        )
        self.remaining = remaining
        self.stall_timeout_s = stall_timeout_s


def from_reader_stalled(error: ReaderStalledError, table: str = "") -> status_pb2.Status:
    # DEADLINE_EXCEEDED: a time limit on the stream ran out (the reader's, per page), and the
    # taxonomy's retryable DeadlineExceeded leaf fits; ABORTED means a conflict there.
    # Nothing on the gateway's side needs time to recover: retry at once.
    leaf = BY_REASON["Service.DeadlineExceeded"]
    stall = f"{error.stall_timeout_s:g}"
    return _scan_cut(leaf, error, 0.0, table=table, failure="ReaderStalled", stall_timeout_s=stall)


def from_not_taken(error: NotTakenError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Service.ServiceUnavailable"]
    return make_status(
        leaf,
        str(error),
        [error_info(leaf, failure="ShuttingDown", taken="false"), retry_info(error.retry_after_s)],
    )


def from_replay_mismatch(error: ReplayMismatchError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Configuration.ReplayMismatch"]
    nearest = "" if error.nearest_line is None else str(error.nearest_line)
    violation = error_details_pb2.PreconditionFailure.Violation(
        type="REPLAY_MISMATCH",
        subject=f"{error.cassette}:{nearest}" if nearest else error.cassette,
        description=bounded("; ".join(error.differences) or str(error), MAX_MESSAGE_BYTES),
    )
    metadata = {"operation": error.operation, "cassette": error.cassette, "nearest_line": nearest}
    return make_status(
        leaf,
        str(error),
        [error_info(leaf, **metadata), error_details_pb2.PreconditionFailure(violations=[violation])],
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


def from_global_table_mode(error: GlobalTableModeError, table: str = "") -> status_pb2.Status:
    leaf = BY_REASON["Configuration.GlobalTableMode"]
    violation = error_details_pb2.PreconditionFailure.Violation(
        type="GLOBAL_TABLE_MODE", subject=error.table, description=bounded(str(error), MAX_MESSAGE_BYTES)
    )
    metadata = {
        "operation": error.operation,
        "table": error.table,
        "write_mode": error.write_mode,
        "consistency": error.consistency,
    }
    return make_status(
        leaf,
        str(error),
        [error_info(leaf, **metadata), error_details_pb2.PreconditionFailure(violations=[violation])],
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
    NotTakenError: from_not_taken,
    ReplayMismatchError: from_replay_mismatch,
    GlobalTableModeError: from_global_table_mode,
    ReaderStalledError: from_reader_stalled,
}
