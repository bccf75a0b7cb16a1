"""The error taxonomy: one table of leaves shared by the server and the Python client.

Every failure the gateway reports is one leaf, sent as ErrorInfo.reason
("Category.Leaf"). The gRPC code is chosen per leaf; `retryable` says whether
the gateway itself retries it (and attaches RetryInfo when it gives up).
Pure data: must not import grpc, the server or any AWS SDK.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Leaf:
    category: str
    name: str
    # The name of the grpc.StatusCode sent for this leaf.
    grpc_code: str
    retryable: bool

    @property
    def reason(self) -> str:
        return f"{self.category}.{self.name}"


def _leaves(category: str, grpc_code: str, retryable: bool, *names: str) -> list[Leaf]:
    return [Leaf(category, name, grpc_code, retryable) for name in names]


LEAVES: tuple[Leaf, ...] = (
    # The gateway's own setup is wrong: an operator must fix it, a retry will not.
    *_leaves("Configuration", "FAILED_PRECONDITION", False, "InvalidRegion", "InvalidCredentials"),
    # A replaying gateway's cassette holds no recording of the call (see the PreconditionFailure detail).
    Leaf("Configuration", "ReplayMismatch", "FAILED_PRECONDITION", False),
    # A global table's write and consistency modes cannot serve the call safely (regions file).
    Leaf("Configuration", "GlobalTableMode", "FAILED_PRECONDITION", False),
    # A table name DynamoDB cannot have.
    Leaf("Configuration", "InvalidTable", "INVALID_ARGUMENT", False),
    # The gateway's AWS identity: missing or expired credentials may come back after a refresh.
    *_leaves(
        "Authentication", "UNAVAILABLE", False, "CredentialsNotFound", "TokenExpired", "AssumeRoleFailed"
    ),
    Leaf("Authentication", "AccessDenied", "PERMISSION_DENIED", False),
    # The caller's request is malformed. InvalidParameter is ours: parameters that are neither
    # keys, types nor expressions (limits, segments, enums, batch shapes).
    *_leaves(
        "Validation",
        "INVALID_ARGUMENT",
        False,
        "InvalidKey",
        "InvalidExpression",
        "MissingRequiredKey",
        "TypeMismatch",
        "InvalidParameter",
    ),
    Leaf("ConditionalCheck", "ConditionFailed", "FAILED_PRECONDITION", False),
    # A single-item write that collided with a transaction in flight.
    Leaf("ConditionalCheck", "TransactionConflict", "ABORTED", True),
    # A versioned write expected another version than the item has: re-read, then write again.
    Leaf("ConditionalCheck", "VersionConflict", "FAILED_PRECONDITION", False),
    *_leaves(
        "Throughput",
        "RESOURCE_EXHAUSTED",
        True,
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "ThrottlingException",
    ),
    Leaf("Item", "ItemNotFound", "NOT_FOUND", False),
    Leaf("Item", "ItemTooLarge", "INVALID_ARGUMENT", False),
    Leaf("Item", "ItemCollectionSizeLimitExceeded", "FAILED_PRECONDITION", False),
    # Retryable only when every cancellation reason is a conflict or a throttle (decided per error).
    Leaf("Transaction", "TransactionCanceled", "ABORTED", False),
    Leaf("Transaction", "TransactionConflict", "ABORTED", True),
    Leaf("Transaction", "IdempotentParameterMismatch", "INVALID_ARGUMENT", False),
    Leaf("Transaction", "TransactionInProgress", "ABORTED", True),
    *_leaves("Service", "UNAVAILABLE", True, "InternalServerError", "ServiceUnavailable"),
    Leaf("Service", "ResourceNotFound", "NOT_FOUND", False),
    # The caller's deadline ran out before DynamoDB answered (or before another attempt fitted).
    Leaf("Service", "DeadlineExceeded", "DEADLINE_EXCEEDED", True),
    # A bug in the gateway; the cause is only in its log.
    Leaf("Service", "Internal", "INTERNAL", False),
    # The caller, as the gateway's own security sees it (not the gateway's AWS identity above):
    # no valid credentials, a policy that does not allow the call, a request over a size limit.
    Leaf("Caller", "Unauthenticated", "UNAUTHENTICATED", False),
    Leaf("Caller", "PermissionDenied", "PERMISSION_DENIED", False),
    Leaf("Caller", "RequestTooLarge", "RESOURCE_EXHAUSTED", False),
    # Too many of the caller's (or everyone's) RPCs in flight: a later attempt may get in, so the
    # status carries RetryInfo, but the gateway itself does not retry (it never queues them).
    Leaf("Caller", "ConcurrencyLimitExceeded", "RESOURCE_EXHAUSTED", True),
)

BY_REASON: dict[str, Leaf] = {leaf.reason: leaf for leaf in LEAVES}
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(leaf.category for leaf in LEAVES))


def leaf(reason: str) -> Leaf:
    return BY_REASON[reason]
