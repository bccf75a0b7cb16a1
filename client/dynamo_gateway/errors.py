"""Typed exceptions for the error taxonomy, decoded from the gateway's google.rpc.Status details.

    GatewayError (.code, .message, .reason, .metadata, .field_violations, .retry_after_s)
    +-- ConfigurationError: InvalidTableError, InvalidRegionError, InvalidCredentialsError,
    |                       ReplayMismatchError (.nearest_line), GlobalTableModeError
    +-- AuthenticationError: CredentialsNotFoundError, TokenExpiredError, AccessDeniedError,
    |                        AssumeRoleFailedError
    +-- ValidationError: InvalidKeyError, InvalidExpressionError, MissingRequiredKeyError,
    |                    TypeMismatchError, InvalidParameterError
    +-- ConditionalCheckError: ConditionFailedError (.item), WriteConflictError,
    |                          VersionConflictError (.current_item, .current_version,
    |                          .expected_version, .key, .action_index)
    +-- ThroughputError: ProvisionedThroughputExceededError, RequestLimitExceededError, ThrottlingError
    +-- ItemError: ItemNotFoundError, ItemTooLargeError, ItemCollectionSizeLimitExceededError
    +-- TransactionError: TransactionCanceledError (.reasons), TransactionConflictError (.reasons),
    |                     IdempotentParameterMismatchError, TransactionInProgressError
    +-- ServiceError: InternalServerError, ServiceUnavailableError (.outcome_unknown),
    |                 ResourceNotFoundError, DeadlineExceededError, InternalError
    +-- CallerError: UnauthenticatedError, PermissionDeniedError, RequestTooLargeError,
                     ConcurrencyLimitExceededError

Each class's `reason` is its taxonomy leaf (dynamo_gateway.taxonomy). from_rpc_error()
is the one place that picks the class; call_unary() and call_stream() wrap a grpc.aio
stub's unary and server-streaming calls with it, so the client, the CLI and the
transfers never catch grpc errors themselves. Must not import the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from dynamo_gateway.v1 import errors_pb2

from . import regions
from .values import Item, from_item


class GatewayError(Exception):
    """A call the gateway answered with an error status."""

    # The taxonomy leaf ("Category.Leaf") of the class; "" for errors without details.
    REASON: ClassVar[str] = ""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[tuple[str, str]] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        # The ErrorInfo reason: the taxonomy leaf, e.g. "Throughput.ProvisionedThroughputExceeded".
        self.reason = reason
        # ErrorInfo metadata: aws_error_code, aws_request_id, table, ...
        self.metadata = metadata or {}
        # (field, description) pairs from a BadRequest detail.
        self.field_violations = field_violations or []
        # From RetryInfo: set on retryable errors, None on the others.
        self.retry_after_s = retry_after_s
        # The google.rpc.Status the error was decoded from (set by from_rpc_error); None without details.
        self.status: status_pb2.Status | None = None
        # A ParallelScan cut short (a gateway shutting down, a reader that stalled): each unfinished
        # segment -> its resume key (None: from its beginning). None for any other error.
        self.scan_remaining: dict[int, Item | None] | None = None
        # With global tables: the DynamoDB regions the call went to before it failed (may be empty).
        self.regions: tuple[str, ...] = ()

    @property
    def retryable(self) -> bool:
        return self.retry_after_s is not None


@dataclass(frozen=True)
class CancellationReason:
    code: str
    message: str = ""
    item: Item | None = None


class ConfigurationError(GatewayError):
    pass


class InvalidTableError(ConfigurationError):
    REASON = "Configuration.InvalidTable"


class InvalidRegionError(ConfigurationError):
    REASON = "Configuration.InvalidRegion"


class InvalidCredentialsError(ConfigurationError):
    REASON = "Configuration.InvalidCredentials"


class ReplayMismatchError(ConfigurationError):
    """A replaying gateway's cassette holds no recording of the call."""

    REASON = "Configuration.ReplayMismatch"

    @property
    def nearest_line(self) -> int | None:
        """The cassette line of the nearest recording, if any."""
        line = self.metadata.get("nearest_line", "")
        return int(line) if line.isdigit() else None


class GlobalTableModeError(ConfigurationError):
    """The global table's modes (write mode, MREC/MRSC) cannot serve the call safely; the message says why."""

    REASON = "Configuration.GlobalTableMode"


class AuthenticationError(GatewayError):
    pass


class CredentialsNotFoundError(AuthenticationError):
    REASON = "Authentication.CredentialsNotFound"


class TokenExpiredError(AuthenticationError):
    REASON = "Authentication.TokenExpired"


class AccessDeniedError(AuthenticationError):
    REASON = "Authentication.AccessDenied"


class AssumeRoleFailedError(AuthenticationError):
    REASON = "Authentication.AssumeRoleFailed"


class ValidationError(GatewayError):
    pass


class InvalidKeyError(ValidationError):
    REASON = "Validation.InvalidKey"


class InvalidExpressionError(ValidationError):
    REASON = "Validation.InvalidExpression"


class MissingRequiredKeyError(ValidationError):
    REASON = "Validation.MissingRequiredKey"


class TypeMismatchError(ValidationError):
    REASON = "Validation.TypeMismatch"


class InvalidParameterError(ValidationError):
    REASON = "Validation.InvalidParameter"


class ConditionalCheckError(GatewayError):
    pass


class ConditionFailedError(ConditionalCheckError):
    REASON = "ConditionalCheck.ConditionFailed"
    # The item as it was, when the call asked for it (return_old_on_failure); else None.
    item: Item | None = None


class WriteConflictError(ConditionalCheckError):
    """A single-item write that met a transaction in flight on the same item."""

    REASON = "ConditionalCheck.TransactionConflict"


class VersionConflictError(ConditionalCheckError):
    """A versioned write (expected_version) found another version than it expected: start the
    read-modify-write again from .current_item and .current_version rather than retrying as is."""

    REASON = "ConditionalCheck.VersionConflict"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The key of the item the write was for.
        self.key: Item = {}
        # The version the write expected; None when it expected no item ("absent").
        self.expected_version: int | None = None
        # The item's version as DynamoDB checked it; None when no versioned item exists.
        self.current_version: int | None = None
        # The item as DynamoDB checked it; None when none exists.
        self.current_item: Item | None = None
        # In a transact_write: the position of the action whose version did not match.
        self.action_index = 0


class ThroughputError(GatewayError):
    pass


class ProvisionedThroughputExceededError(ThroughputError):
    REASON = "Throughput.ProvisionedThroughputExceeded"


class RequestLimitExceededError(ThroughputError):
    REASON = "Throughput.RequestLimitExceeded"


class ThrottlingError(ThroughputError):
    REASON = "Throughput.ThrottlingException"


class ItemError(GatewayError):
    pass


class ItemNotFoundError(ItemError):
    REASON = "Item.ItemNotFound"


class ItemTooLargeError(ItemError):
    REASON = "Item.ItemTooLarge"


class ItemCollectionSizeLimitExceededError(ItemError):
    REASON = "Item.ItemCollectionSizeLimitExceeded"


class TransactionError(GatewayError):
    # Why each action was cancelled, in request order (cancelled transactions only).
    reasons: list[CancellationReason]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reasons = []


class TransactionCanceledError(TransactionError):
    REASON = "Transaction.TransactionCanceled"


class TransactionConflictError(TransactionError):
    REASON = "Transaction.TransactionConflict"


class IdempotentParameterMismatchError(TransactionError):
    REASON = "Transaction.IdempotentParameterMismatch"


class TransactionInProgressError(TransactionError):
    REASON = "Transaction.TransactionInProgress"


class ServiceError(GatewayError):
    pass


class InternalServerError(ServiceError):
    REASON = "Service.InternalServerError"


class ServiceUnavailableError(ServiceError):
    REASON = "Service.ServiceUnavailable"
    # Set when a write failed ambiguously and was not repeated: it may or may not have been applied.
    outcome_unknown: bool = False

    @property
    def not_taken(self) -> bool:
        """The gateway was about to stop and did nothing with the call: send it again after retry_after_s."""
        return self.metadata.get("taken") == "false"


class ResourceNotFoundError(ServiceError):
    REASON = "Service.ResourceNotFound"


class DeadlineExceededError(ServiceError):
    REASON = "Service.DeadlineExceeded"


class InternalError(ServiceError):
    REASON = "Service.Internal"


class CallerError(GatewayError):
    """The gateway's own security refused the caller (not DynamoDB, not the gateway's AWS identity)."""


class UnauthenticatedError(CallerError):
    REASON = "Caller.Unauthenticated"


class PermissionDeniedError(CallerError):
    """The gateway's policy does not allow this operation on a table; .metadata names both."""

    REASON = "Caller.PermissionDenied"


class RequestTooLargeError(CallerError):
    REASON = "Caller.RequestTooLarge"


class ConcurrencyLimitExceededError(CallerError):
    REASON = "Caller.ConcurrencyLimitExceeded"


def _leaf_classes(base: type[GatewayError]) -> list[type[GatewayError]]:
    found = []
    for sub in base.__subclasses__():
        if sub.REASON:
            found.append(sub)
        found.extend(_leaf_classes(sub))
    return found


BY_REASON: dict[str, type[GatewayError]] = {cls.REASON: cls for cls in _leaf_classes(GatewayError)}

# Without details (e.g. an error from a proxy in between), the status code still says something.
_BY_CODE: dict[grpc.StatusCode, type[GatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: ValidationError,
    grpc.StatusCode.FAILED_PRECONDITION: ConditionalCheckError,
    grpc.StatusCode.NOT_FOUND: ResourceNotFoundError,
    grpc.StatusCode.ABORTED: TransactionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ThroughputError,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailableError,
    grpc.StatusCode.PERMISSION_DENIED: AccessDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INTERNAL: InternalError,
}


def _class_without_details(code: grpc.StatusCode, message: str) -> type[GatewayError]:
    # gRPC itself refuses metadata over the server's bound, before the gateway sees the call: its
    # words are the only sign that the caller sent too much, not that capacity ran out.
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata size exceeds" in message:
        return RequestTooLargeError
    return _BY_CODE.get(code, GatewayError)


def status_details(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status in the error's grpc-status-details-bin trailer, or None without one.

    Works for the sync stubs' errors (grpc.Call) and grpc.aio's AioRpcError alike: from_call
    only reads code(), details() and trailing_metadata(), which both have.
    """
    try:
        status: status_pb2.Status | None = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:
        # The trailer's code or message disagrees with the call's own: something between us
        # and the gateway (a proxy) replaced the status, so the details describe another
        # failure than the one the call ended with. Trust the call's code, as for a proxy's
        # own error without details.
        return None
    return status


def from_rpc_error(error: grpc.RpcError) -> GatewayError:
    code = error.code()
    message = error.details() or ""
    status = status_details(error)
    info = error_details_pb2.ErrorInfo()
    bad_request = error_details_pb2.BadRequest()
    retry = error_details_pb2.RetryInfo()
    condition = errors_pb2.ConditionalCheckFailure()
    cancellation = errors_pb2.TransactionCancellation()
    outcome = errors_pb2.OutcomeUnknown()
    conflict = errors_pb2.VersionConflict()
    interrupted = errors_pb2.ScanInterrupted()
    seen: set[str] = set()
    for detail in status.details if status else ():
        for target in (info, bad_request, retry, condition, cancellation, outcome, conflict, interrupted):
            if detail.Unpack(target):  # False (and target untouched) for a detail of another type
                seen.add(target.DESCRIPTOR.full_name)
    cls = BY_REASON.get(info.reason) or _class_without_details(code, message)
    served = regions.regions_in(_trailing_metadata(error))
    result = cls(
        code,
        message,
        reason=info.reason,
        metadata=dict(info.metadata),
        field_violations=[(v.field, v.description) for v in bad_request.field_violations],
        retry_after_s=retry.retry_delay.ToNanoseconds() / 1e9 if retry.DESCRIPTOR.full_name in seen else None,
    )
    result.status = status
    if isinstance(result, ConditionFailedError):
        result.item = from_item(condition.item) if condition.item else None
    if isinstance(result, VersionConflictError):
        result.key = from_item(conflict.key)
        result.expected_version = conflict.expected_version if conflict.HasField("expected_version") else None
        result.current_version = conflict.current_version if conflict.HasField("current_version") else None
        result.current_item = from_item(conflict.current_item) if conflict.current_item else None
        result.action_index = conflict.action_index
    if isinstance(result, TransactionError):
        result.reasons = [
            CancellationReason(r.code, r.message, from_item(r.item) if r.item else None)
            for r in cancellation.reasons
        ]
    if isinstance(result, ServiceUnavailableError):
        result.outcome_unknown = outcome.DESCRIPTOR.full_name in seen
    if interrupted.DESCRIPTOR.full_name in seen:
        result.scan_remaining = {
            start.segment: from_item(start.exclusive_start_key) if start.exclusive_start_key else None
            for start in interrupted.remaining
        }
    result.regions = served
    return result


def _trailing_metadata(error: grpc.RpcError) -> Any:
    trailing = getattr(error, "trailing_metadata", None)
    return trailing() if callable(trailing) else None


RESUME_MARGIN_S = 0.05  # after a stopping gateway's listener has closed, not just before
BROKEN_STREAM_WAIT_S = 0.1


def scan_continuation(error: GatewayError) -> float | None:
    """How long to wait before a ParallelScan that ended with `error` goes on from where each
    segment stopped, or None if it should not (a scan only reads: going on is always safe).

    A gateway shutting down says how long its listener stays open (the connection leads back to
    it until then); a stalled reader's stream needs no wait; a stream that broke without a word
    from the gateway (a connection cut, a call cancelled in a stopping server's queue) is tried
    again shortly."""
    if isinstance(error, ServiceUnavailableError) and (error.scan_remaining is not None or error.not_taken):
        return (error.retry_after_s or 0.0) + RESUME_MARGIN_S
    if isinstance(error, DeadlineExceededError) and error.scan_remaining is not None:
        return 0.0
    if not error.reason and error.code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE):
        return BROKEN_STREAM_WAIT_S
    return None


# A gateway refuses calls for a moment just before it stops (not_taken); the retry reaches another replica.
NOT_TAKEN_RETRIES = 5


async def call_unary(method: Any, request: Any, timeout_s: float | None) -> Any:
    """Awaits one unary call of a grpc.aio stub; a failure raises the typed error of from_rpc_error.

    A call a stopping gateway did not take is sent again (it did nothing), after the wait it asks."""
    retries = 0
    while True:
        try:
            if not regions.collecting():
                return await method(request, timeout=timeout_s)
            call = method(request, timeout=timeout_s)
            response = await call
            regions.note(regions.regions_in(await call.trailing_metadata()))
            return response
        except grpc.aio.AioRpcError as error:
            failure = from_rpc_error(error)
            regions.note(failure.regions)
        if (
            not (isinstance(failure, ServiceUnavailableError) and failure.not_taken)
            or retries >= NOT_TAKEN_RETRIES
        ):
            raise failure
        retries += 1
        await asyncio.sleep(failure.retry_after_s or 0.0)


async def call_stream(method: Any, request: Any, timeout_s: float | None) -> AsyncGenerator[Any, None]:
    """The messages of one server-streaming call of a grpc.aio stub; a failure raises the typed
    error of from_rpc_error.

    Closing the iterator early (use contextlib.aclosing, so that happens at once, not when the
    garbage collector gets to it) cancels the call, which stops the gateway's work for it.
    """
    call = method(request, timeout=timeout_s)
    try:
        async for message in call:
            yield message
        if regions.collecting():
            regions.note(regions.regions_in(await call.trailing_metadata()))
    except grpc.aio.AioRpcError as error:
        failure = from_rpc_error(error)
        regions.note(failure.regions)
        raise failure from None
    finally:
        call.cancel()  # a no-op once the stream has ended
