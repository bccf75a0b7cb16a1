"""The failure model: what each failure of a DynamoDB call means, decided in one place.

Owns the one table from AWS error codes to taxonomy leaves (with the refinements
DynamoDB's messages and cancellation reasons allow), the leaf of a backend that
could not be reached, and every question the rest of the gateway asks of a
failure: is another attempt worth it (`is_retryable`), does it say the backend
is unhealthy (`counts_against_health`), which `status` metric label it gets
(`status_label`). dynamo_gateway.taxonomy holds the leaves themselves (their gRPC
codes and retryability); errors.py renders any failure as a google.rpc.Status.
Pure: must not import grpc, OpenTelemetry, the codec or the servicer.
"""

from __future__ import annotations

import asyncio

from dynamo_gateway.taxonomy import BY_REASON, Leaf

from .backends.base import BackendError, BackendUnavailableError, ReplayMismatchError
from .global_tables import GlobalTableModeError

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

# BackendUnavailableError.reason -> taxonomy reason, for the failures of the gateway's own
# setup; any other reason is DynamoDB out of reach.
_SETUP_FAILURES = {
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

DynamoFailure = BackendError | BackendUnavailableError


def leaf_of(error: DynamoFailure) -> Leaf:
    """The taxonomy leaf of what DynamoDB answered (or of not reaching it)."""
    if isinstance(error, BackendUnavailableError):
        return BY_REASON[_SETUP_FAILURES.get(error.reason, "Service.ServiceUnavailable")]
    if error.code == "ValidationException":
        text = error.message.lower()
        for fragment, fragment_reason in _VALIDATION_MESSAGES:
            if fragment in text:
                return BY_REASON[fragment_reason]
    if error.code == "TransactionCanceledException":
        codes = {r.get("Code", "None") for r in error.cancellation_reasons} - {"None"}
        if codes == {"TransactionConflict"}:
            return BY_REASON["Transaction.TransactionConflict"]
    reason = AWS_ERROR_CODES.get(error.code)
    if reason is None:
        reason = "Service.InternalServerError" if error.http_status >= 500 else "Validation.InvalidParameter"
    return BY_REASON[reason]


def code_of(error: BaseException) -> str:
    """The short name logs and metrics give a failure: DynamoDB's code, or what failed."""
    if isinstance(error, BackendError):
        return error.code
    if isinstance(error, BackendUnavailableError):
        return error.reason
    return type(error).__name__


def is_retryable(error: DynamoFailure) -> bool:
    """Whether another attempt of the same request may succeed."""
    if isinstance(error, BackendError) and error.code == "TransactionCanceledException":
        codes = {r.get("Code", "None") for r in error.cancellation_reasons}
        return bool(codes - {"None"}) and codes <= _TRANSIENT_CANCELLATIONS
    if isinstance(error, BackendUnavailableError) and error.reason in _SETUP_FAILURES:
        return False  # a setup problem: the same request will meet it again
    return leaf_of(error).retryable


def _is_backend_fault(leaf: Leaf) -> bool:
    """DynamoDB (or the way to it) failed, rather than the request or the gateway's setup.
    A missing table is the request's mistake although DynamoDB files it under Service."""
    return leaf.category in ("Throughput", "Service") and leaf.reason != "Service.ResourceNotFound"


def counts_against_health(error: BaseException) -> bool:
    """Only signs of an unhealthy backend trip the circuit breaker: throttling left after retries,
    5xx and connection failures. A caller's mistake, a false condition or a missing credential
    says nothing of it."""
    if isinstance(error, BackendError | BackendUnavailableError):
        return _is_backend_fault(leaf_of(error))
    return False


# ---------------------------------------------------------------- the `status` metric label

# A small fixed set, so error rates can leave out expected outcomes.
OK = "ok"
THROTTLED = "throttled"
CONDITION_FAILED = "condition_failed"
CLIENT_ERROR = "client_error"
AUTH_ERROR = "auth_error"
SERVER_ERROR = "server_error"
CANCELLED = "cancelled"
STATUS_LABELS = (OK, THROTTLED, CONDITION_FAILED, CLIENT_ERROR, AUTH_ERROR, SERVER_ERROR, CANCELLED)


def status_label(error: BaseException) -> str:
    """The `status` label of a DynamoDB call that failed with `error`."""
    if isinstance(error, asyncio.CancelledError):
        return CANCELLED
    if isinstance(error, ReplayMismatchError | GlobalTableModeError):
        return CLIENT_ERROR  # the test's call, not in its cassette; a call the table's modes refuse
    if not isinstance(error, BackendError | BackendUnavailableError):
        return SERVER_ERROR  # a bug on our side of the seam; the servicer maps it to INTERNAL
    leaf = leaf_of(error)
    if leaf.category == "Throughput":
        return THROTTLED
    if leaf.reason == "ConditionalCheck.ConditionFailed":
        return CONDITION_FAILED
    if leaf.category == "Authentication" or leaf.reason == "Configuration.InvalidCredentials":
        return AUTH_ERROR
    if _is_backend_fault(leaf) or leaf.reason == "Configuration.InvalidRegion":
        return SERVER_ERROR
    return CLIENT_ERROR
