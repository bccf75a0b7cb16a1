"""Classifies every failure into the error taxonomy and renders it as a gRPC status.

Owns: the one table from AWS error codes to taxonomy leaves (dynamo_gateway.taxonomy
holds the leaves, their gRPC codes and retryability), the retryability of each
failure instance, and the google.rpc.Status details: exactly one ErrorInfo
(reason = the leaf, domain = ERROR_DOMAIN, metadata = AWS error code, request id,
table), RetryInfo on retryable errors, BadRequest for our own validation, and our
typed details (old item, cancellation reasons, unknown outcome).
Must not import the servicer or do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import any_pb2, duration_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from dynamo_gateway.taxonomy import BY_REASON, Leaf
from dynamo_gateway.v1 import errors_pb2

from . import codec
from .backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    OutcomeUnknownError,
)

ERROR_DOMAIN = "dynamo-gateway"
# Suggested wait when a retryable error carries no better estimate.
DEFAULT_RETRY_AFTER_S = 0.1

# AWS error code -> taxonomy reason. ValidationException and TransactionCanceledException
# are refined per error below; codes not listed fall back on the HTTP status class.
AWS_ERROR_CODES: dict[str, str] = {
    "ProvisionedThroughputExceededException": "Throughput.ProvisionedThroughputExceeded",
    "ThrottlingException": "Throughput.ThrottlingException",
    "RequestLimitExceeded": "Throughput.RequestLimitExceeded",
    "LimitExceededException": "Throughput.RequestLimitExceeded",
    "ConditionalCheckFailedException": "ConditionalCheck.ConditionFailed",
    "TransactionConflictException": "ConditionalCheck.TransactionConflict",
    "TransactionCanceledException": "Transaction.TransactionCanceled",
    "IdempotentParameterMismatchException": "Transaction.IdempotentParameterMismatch",
    "TransactionInProgressException": "Transaction.TransactionInProgress",
    "ResourceNotFoundException": "Service.ResourceNotFound",
    "ValidationException": "Validation.InvalidParameter",
    "SerializationException": "Validation.TypeMismatch",
    "ResourceInUseException": "Validation.InvalidParameter",
    "AccessDeniedException": "Authentication.AccessDenied",
    "ExpiredTokenException": "Authentication.TokenExpired",
    "UnrecognizedClientException": "Configuration.InvalidCredentials",
    "InvalidSignatureException": "Configuration.InvalidCredentials",
    "IncompleteSignatureException": "Configuration.InvalidCredentials",
    "MissingAuthenticationTokenException": "Configuration.InvalidCredentials",
    "InternalServerError": "Service.InternalServerError",
    "ServiceUnavailable": "Service.ServiceUnavailable",
    "ItemCollectionSizeLimitExceededException": "Item.ItemCollectionSizeLimitExceeded",
}

# ValidationException covers many mistakes; its message tells them apart (first match wins).
_VALIDATION_MESSAGES: tuple[tuple[str, str], ...] = (
    ("item size", "Item.ItemTooLarge"),
    ("tablename", "Configuration.InvalidTable"),
    ("table name", "Configuration.InvalidTable"),
    ("key element does not match", "Validation.InvalidKey"),
    ("provided key", "Validation.InvalidKey"),
    ("required key", "Validation.MissingRequiredKey"),
    ("missing the key", "Validation.MissingRequiredKey"),
    ("type mismatch", "Validation.TypeMismatch"),
    ("mismatched", "Validation.TypeMismatch"),
    ("incorrect data type", "Validation.TypeMismatch"),
    ("expression", "Validation.InvalidExpression"),
)

_UNAVAILABLE_REASONS = {
    "NoCredentials": "Authentication.CredentialsNotFound",
    "AssumeRoleFailed": "Authentication.AssumeRoleFailed",
    "NoRegion": "Configuration.InvalidRegion",
}

# Cancellation reasons that a later attempt of the same transaction can overcome.
_TRANSIENT_CANCELLATIONS = {
    "None",
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
}


def leaf_of(error: BackendError | BackendUnavailableError) -> Leaf:
    if isinstance(error, BackendUnavailableError):
        return BY_REASON[_UNAVAILABLE_REASONS.get(error.reason, "Service.ServiceUnavailable")]
    if error.code == "ValidationException":
        text = error.message.lower()
        for fragment, reason in _VALIDATION_MESSAGES:
            if fragment in text:
                return BY_REASON[reason]
    if error.code == "TransactionCanceledException":
        codes = {r.get("Code", "None") for r in error.cancellation_reasons} - {"None"}
        if codes == {"TransactionConflict"}:
            return BY_REASON["Transaction.TransactionConflict"]
    reason = AWS_ERROR_CODES.get(error.code)
    if reason is None:
        reason = "Service.InternalServerError" if error.http_status >= 500 else "Validation.InvalidParameter"
    return BY_REASON[reason]


def is_retryable(error: BackendError | BackendUnavailableError) -> bool:
    """Whether another attempt of the same request may succeed."""
    if isinstance(error, BackendError) and error.code == "TransactionCanceledException":
        codes = {r.get("Code", "None") for r in error.cancellation_reasons}
        return bool(codes - {"None"}) and codes <= _TRANSIENT_CANCELLATIONS
    if isinstance(error, BackendUnavailableError) and error.reason in _UNAVAILABLE_REASONS:
        return False  # a setup problem: the same request will meet it again
    return leaf_of(error).retryable


# ---------------------------------------------------------------- rendering


def _pack(detail: message.Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def make_status(leaf: Leaf, text: str, details: Iterable[message.Message]) -> status_pb2.Status:
    return status_pb2.Status(
        code=getattr(code_pb2, leaf.grpc_code), message=text, details=[_pack(d) for d in details]
    )


def grpc_code(leaf: Leaf) -> grpc.StatusCode:
    return grpc.StatusCode[leaf.grpc_code]


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
    return make_status(
        leaf,
        f"invalid {error.field}: {error.description}",
        [error_info(leaf, field=error.field), error_details_pb2.BadRequest(field_violations=[violation])],
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


def internal(request_id: str) -> status_pb2.Status:
    """For bugs: says nothing of the cause (it is in the log under the request id)."""
    leaf = BY_REASON["Service.Internal"]
    return make_status(
        leaf, f"internal error (request id {request_id})", [error_info(leaf, request_id=request_id)]
    )
