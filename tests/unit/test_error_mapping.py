"""The error taxonomy end to end: AWS failures -> leaf -> google.rpc.Status, and the client's decoding back.

The expected tables here are written out by hand from the taxonomy's rules; they are not derived
from failures.AWS_ERROR_CODES or taxonomy.LEAVES, so a wrong row in either fails a test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import message as pb_message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from dynamo_gateway import errors as client_errors
from dynamo_gateway import taxonomy
from dynamo_gateway.v1 import errors_pb2
from dynamo_gateway_server import codec, errors, failures
from dynamo_gateway_server.backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    OutcomeUnknownError,
)

DETAIL_TYPES: dict[str, type[pb_message.Message]] = {
    "google.rpc.ErrorInfo": error_details_pb2.ErrorInfo,
    "google.rpc.BadRequest": error_details_pb2.BadRequest,
    "google.rpc.RetryInfo": error_details_pb2.RetryInfo,
    "dynamo_gateway.v1.ConditionalCheckFailure": errors_pb2.ConditionalCheckFailure,
    "dynamo_gateway.v1.TransactionCancellation": errors_pb2.TransactionCancellation,
    "dynamo_gateway.v1.OutcomeUnknown": errors_pb2.OutcomeUnknown,
}
GRPC_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# google.rpc.Code numbers, spelled out so that a wrong name in the taxonomy cannot hide.
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
INTERNAL = 13
UNAVAILABLE = 14


def _details(status: status_pb2.Status) -> list[pb_message.Message]:
    unpacked = []
    for detail in status.details:
        message = DETAIL_TYPES[detail.TypeName()]()
        assert detail.Unpack(message)
        unpacked.append(message)
    return unpacked


def _of_type(status: status_pb2.Status, kind: type[pb_message.Message]) -> list[Any]:
    return [d for d in _details(status) if isinstance(d, kind)]


def _one_error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    (info,) = _of_type(status, error_details_pb2.ErrorInfo)
    return info


def _retry_delay_s(status: status_pb2.Status) -> float | None:
    """The RetryInfo delay in seconds, None without RetryInfo (more than one fails)."""
    found = _of_type(status, error_details_pb2.RetryInfo)
    assert len(found) <= 1
    return found[0].retry_delay.ToNanoseconds() / 1e9 if found else None


def _item_wire(item: Any) -> dict[str, Any]:
    return codec.item_to_wire(item, "x")


# ---------------------------------------------------------------- every AWS error code

# (AWS code, leaf reason, google.rpc code, retryable, client class), by hand from the taxonomy's rules:
# throttling is RESOURCE_EXHAUSTED and retried; 5xx is UNAVAILABLE and retried; conflicts are ABORTED
# and retried; our caller's mistakes are INVALID_ARGUMENT; the gateway's broken setup is
# FAILED_PRECONDITION; expired credentials are UNAVAILABLE but not retried by the gateway.
AWS_ROWS: list[tuple[str, str, int, bool, type[client_errors.GatewayError]]] = [
    (
        "ProvisionedThroughputExceededException",
        "Throughput.ProvisionedThroughputExceeded",
        RESOURCE_EXHAUSTED,
        True,
        client_errors.ProvisionedThroughputExceededError,
    ),
    (
        "ThrottlingException",
        "Throughput.ThrottlingException",
        RESOURCE_EXHAUSTED,
        True,
        client_errors.ThrottlingError,
    ),
    (
        "RequestLimitExceeded",
        "Throughput.RequestLimitExceeded",
        RESOURCE_EXHAUSTED,
        True,
        client_errors.RequestLimitExceededError,
    ),
    (
        "LimitExceededException",
        "Throughput.RequestLimitExceeded",
        RESOURCE_EXHAUSTED,
        True,
        client_errors.RequestLimitExceededError,
    ),
    (
        "ConditionalCheckFailedException",
        "ConditionalCheck.ConditionFailed",
        FAILED_PRECONDITION,
        False,
        client_errors.ConditionFailedError,
    ),
    (
        "TransactionConflictException",
        "ConditionalCheck.TransactionConflict",
        ABORTED,
        True,
        client_errors.WriteConflictError,
    ),
    (
        "TransactionCanceledException",
        "Transaction.TransactionCanceled",
        ABORTED,
        False,
        client_errors.TransactionCanceledError,
    ),
    (
        "IdempotentParameterMismatchException",
        "Transaction.IdempotentParameterMismatch",
        INVALID_ARGUMENT,
        False,
        client_errors.IdempotentParameterMismatchError,
    ),
    (
        "TransactionInProgressException",
        "Transaction.TransactionInProgress",
        ABORTED,
        True,
        client_errors.TransactionInProgressError,
    ),
    (
        "ResourceNotFoundException",
        "Service.ResourceNotFound",
        NOT_FOUND,
        False,
        client_errors.ResourceNotFoundError,
    ),
    (
        "ValidationException",
        "Validation.InvalidParameter",
        INVALID_ARGUMENT,
        False,
        client_errors.InvalidParameterError,
    ),
    (
        "SerializationException",
        "Validation.TypeMismatch",
        INVALID_ARGUMENT,
        False,
        client_errors.TypeMismatchError,
    ),
    (
        "ResourceInUseException",
        "Validation.InvalidParameter",
        INVALID_ARGUMENT,
        False,
        client_errors.InvalidParameterError,
    ),
    (
        "AccessDeniedException",
        "Authentication.AccessDenied",
        PERMISSION_DENIED,
        False,
        client_errors.AccessDeniedError,
    ),
    (
        "ExpiredTokenException",
        "Authentication.TokenExpired",
        UNAVAILABLE,
        False,
        client_errors.TokenExpiredError,
    ),
    (
        "UnrecognizedClientException",
        "Configuration.InvalidCredentials",
        FAILED_PRECONDITION,
        False,
        client_errors.InvalidCredentialsError,
    ),
    (
        "InvalidSignatureException",
        "Configuration.InvalidCredentials",
        FAILED_PRECONDITION,
        False,
        client_errors.InvalidCredentialsError,
    ),
    (
        "IncompleteSignatureException",
        "Configuration.InvalidCredentials",
        FAILED_PRECONDITION,
        False,
        client_errors.InvalidCredentialsError,
    ),
    (
        "MissingAuthenticationTokenException",
        "Configuration.InvalidCredentials",
        FAILED_PRECONDITION,
        False,
        client_errors.InvalidCredentialsError,
    ),
    (
        "InternalServerError",
        "Service.InternalServerError",
        UNAVAILABLE,
        True,
        client_errors.InternalServerError,
    ),
    (
        "ServiceUnavailable",
        "Service.ServiceUnavailable",
        UNAVAILABLE,
        True,
        client_errors.ServiceUnavailableError,
    ),
    (
        "ItemCollectionSizeLimitExceededException",
        "Item.ItemCollectionSizeLimitExceeded",
        FAILED_PRECONDITION,
        False,
        client_errors.ItemCollectionSizeLimitExceededError,
    ),
]
AWS_IDS = [row[0] for row in AWS_ROWS]


def _http_status(aws_code: str) -> int:
    return 503 if aws_code == "ServiceUnavailable" else 500 if aws_code == "InternalServerError" else 400


def _aws_error(aws_code: str, message: str = "it failed") -> BackendError:
    return BackendError(
        code=aws_code, message=message, http_status=_http_status(aws_code), request_id="REQ123"
    )


def test_every_mapped_aws_code_is_in_the_hand_written_table() -> None:
    assert set(failures.AWS_ERROR_CODES) == set(AWS_IDS)
    assert len(AWS_IDS) == len(set(AWS_IDS))


@pytest.mark.parametrize(("aws_code", "reason", "number", "retryable", "_cls"), AWS_ROWS, ids=AWS_IDS)
def test_aws_code_to_leaf_and_status(
    aws_code: str, reason: str, number: int, retryable: bool, _cls: type
) -> None:
    error = _aws_error(aws_code)
    assert failures.leaf_of(error).reason == reason
    assert failures.is_retryable(error) is retryable
    status = errors.from_backend_error(error, table="orders")
    assert status.code == number
    assert status.message == "it failed"
    info = _one_error_info(status)
    assert info.reason == reason
    assert info.domain == "dynamo-gateway"
    assert dict(info.metadata) == {"aws_error_code": aws_code, "aws_request_id": "REQ123", "table": "orders"}
    assert (_retry_delay_s(status) is not None) is retryable


@pytest.mark.parametrize(("aws_code", "reason", "number", "retryable", "cls"), AWS_ROWS, ids=AWS_IDS)
def test_aws_code_to_client_exception(
    aws_code: str, reason: str, number: int, retryable: bool, cls: type
) -> None:
    error = _over_the_wire(errors.from_backend_error(_aws_error(aws_code), table="orders"))
    assert type(error) is cls
    assert error.code == GRPC_BY_NUMBER[number]
    assert error.reason == reason
    assert error.message == "it failed"
    assert error.metadata == {"aws_error_code": aws_code, "aws_request_id": "REQ123", "table": "orders"}
    assert error.retryable is retryable
    assert error.field_violations == []


def test_known_codes_ignore_the_http_status() -> None:
    error = BackendError(code="ThrottlingException", message="m", http_status=500)
    assert failures.leaf_of(error).reason == "Throughput.ThrottlingException"
    assert errors.from_backend_error(error).code == RESOURCE_EXHAUSTED
    error = BackendError(code="ResourceNotFoundException", message="m", http_status=503)
    assert errors.from_backend_error(error).code == NOT_FOUND


@pytest.mark.parametrize(
    ("http_status", "reason", "number", "retryable"),
    [
        (500, "Service.InternalServerError", UNAVAILABLE, True),
        (503, "Service.InternalServerError", UNAVAILABLE, True),
        (599, "Service.InternalServerError", UNAVAILABLE, True),
        (400, "Validation.InvalidParameter", INVALID_ARGUMENT, False),
        (404, "Validation.InvalidParameter", INVALID_ARGUMENT, False),
        (499, "Validation.InvalidParameter", INVALID_ARGUMENT, False),
    ],
)
def test_unknown_codes_fall_back_on_the_http_status(
    http_status: int, reason: str, number: int, retryable: bool
) -> None:
    error = BackendError(code="SomethingNewException", message="huh", http_status=http_status, request_id="r")
    assert failures.leaf_of(error).reason == reason
    assert failures.is_retryable(error) is retryable
    status = errors.from_backend_error(error)
    assert status.code == number
    info = _one_error_info(status)
    assert info.reason == reason
    # The code DynamoDB sent is kept for the operator, although it named no leaf.
    assert info.metadata["aws_error_code"] == "SomethingNewException"
    assert (_retry_delay_s(status) is not None) is retryable


# ---------------------------------------------------------------- ValidationException by message

VALIDATION_MESSAGES = [
    ("The provided key element does not match the schema", "Validation.InvalidKey"),
    (
        "One or more parameter values were invalid: Missing the key sk in the item",
        "Validation.MissingRequiredKey",
    ),
    (
        "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        "Validation.TypeMismatch",
    ),
    (
        "One or more parameter values were invalid: Type mismatch for Index Key gpk Expected: S Actual: N IndexName: by_owner",
        "Validation.TypeMismatch",
    ),
    ('Invalid UpdateExpression: Syntax error; token: "+", near: "+ :one"', "Validation.InvalidExpression"),
    (
        "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v",
        "Validation.InvalidExpression",
    ),
    ("Item size has exceeded the maximum allowed size", "Item.ItemTooLarge"),
    ("Item size to update has exceeded the maximum allowed size", "Item.ItemTooLarge"),
    (
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3",
        "Configuration.InvalidTable",
    ),
    (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        "Validation.InvalidParameter",
    ),
    ("Validation Exception", "Validation.InvalidParameter"),
    ("", "Validation.InvalidParameter"),
]


@pytest.mark.parametrize(("text", "reason"), VALIDATION_MESSAGES)
def test_validation_exception_is_refined_by_its_message(text: str, reason: str) -> None:
    error = BackendError(code="ValidationException", message=text, request_id="V1")
    assert failures.leaf_of(error).reason == reason
    assert not failures.is_retryable(error)
    status = errors.from_backend_error(error, table="t")
    assert status.code == INVALID_ARGUMENT
    info = _one_error_info(status)
    assert info.reason == reason
    assert info.metadata["aws_error_code"] == "ValidationException"
    assert _retry_delay_s(status) is None
    client_error = _over_the_wire(status)
    assert type(client_error) is client_errors.BY_REASON[reason]


def test_message_refinement_is_only_for_validation_exception() -> None:
    error = BackendError(code="ConditionalCheckFailedException", message="Type mismatch for key pk")
    assert failures.leaf_of(error).reason == "ConditionalCheck.ConditionFailed"
    error = BackendError(code="SerializationException", message="The provided key element does not match")
    assert failures.leaf_of(error).reason == "Validation.TypeMismatch"


# ---------------------------------------------------------------- TransactionCanceledException

CONFLICT = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
THROTTLE = {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity"}
PROVISIONED = {"Code": "ProvisionedThroughputExceeded", "Message": "The level of configured provisioned"}
CONDITION = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
NONE = {"Code": "None"}


@pytest.mark.parametrize(
    ("reasons", "leaf", "retryable"),
    [
        ([CONFLICT], "Transaction.TransactionConflict", True),
        ([NONE, CONFLICT, CONFLICT], "Transaction.TransactionConflict", True),
        ([CONFLICT, THROTTLE], "Transaction.TransactionCanceled", True),
        ([NONE, PROVISIONED], "Transaction.TransactionCanceled", True),
        ([CONDITION], "Transaction.TransactionCanceled", False),
        ([CONFLICT, CONDITION], "Transaction.TransactionCanceled", False),
        ([THROTTLE, NONE, CONDITION], "Transaction.TransactionCanceled", False),
        ([NONE, {"Code": "ValidationError", "Message": "bad"}], "Transaction.TransactionCanceled", False),
        ([NONE, NONE], "Transaction.TransactionCanceled", False),
        ([], "Transaction.TransactionCanceled", False),
    ],
    ids=[
        "conflict",
        "none-and-conflicts",
        "conflict-and-throttle",
        "provisioned",
        "condition",
        "conflict-and-condition",
        "throttle-and-condition",
        "validation",
        "only-none",
        "no-reasons",
    ],
)
def test_transaction_cancellation_leaf_and_retryability(
    reasons: list[dict[str, Any]], leaf: str, retryable: bool
) -> None:
    error = BackendError(
        code="TransactionCanceledException", message="Transaction cancelled", cancellation_reasons=reasons
    )
    assert failures.leaf_of(error).reason == leaf
    assert failures.is_retryable(error) is retryable
    status = errors.from_backend_error(error)
    assert status.code == ABORTED
    assert _one_error_info(status).reason == leaf
    assert (_retry_delay_s(status) is not None) is retryable
    client_error = _over_the_wire(status)
    assert isinstance(client_error, client_errors.TransactionError)
    assert client_error.retryable is retryable
    assert [r.code for r in client_error.reasons] == [r["Code"] for r in reasons]


REASONS = [
    {"Code": "None"},
    {
        "Code": "ConditionalCheckFailed",
        "Message": "The conditional request failed",
        "Item": {"pk": {"S": "b"}, "v": {"N": "3"}},
    },
    {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
]


def test_transaction_cancellation_reasons_in_order() -> None:
    error = BackendError(
        code="TransactionCanceledException", message="Transaction cancelled", cancellation_reasons=REASONS
    )
    status = errors.from_backend_error(error)
    (cancellation,) = _of_type(status, errors_pb2.TransactionCancellation)
    assert [(r.code, r.message) for r in cancellation.reasons] == [
        ("None", ""),
        ("ConditionalCheckFailed", "The conditional request failed"),
        ("TransactionConflict", "Transaction is ongoing for the item"),
    ]
    assert [_item_wire(r.item) for r in cancellation.reasons] == [{}, REASONS[1]["Item"], {}]


# ---------------------------------------------------------------- details common to every status


def test_conditional_check_failed_carries_the_old_item() -> None:
    item = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "tags": {"SS": ["x", "y"]}, "m": {"M": {"l": {"L": []}}}}
    error = BackendError(
        code="ConditionalCheckFailedException", message="The conditional request failed", item=item
    )
    status = errors.from_backend_error(error, table="t")
    (failure,) = _of_type(status, errors_pb2.ConditionalCheckFailure)
    assert _item_wire(failure.item) == item


def test_conditional_check_failed_without_item_still_has_the_detail() -> None:
    status = errors.from_backend_error(BackendError(code="ConditionalCheckFailedException", message="m"))
    (failure,) = _of_type(status, errors_pb2.ConditionalCheckFailure)
    assert len(failure.item) == 0


def test_item_is_ignored_for_other_codes() -> None:
    status = errors.from_backend_error(
        BackendError(code="ValidationException", message="m", item={"pk": {"S": "a"}})
    )
    assert _of_type(status, errors_pb2.ConditionalCheckFailure) == []


def test_metadata_leaves_out_what_is_unknown() -> None:
    status = errors.from_backend_error(BackendError(code="ValidationException", message="bad"))
    assert dict(_one_error_info(status).metadata) == {"aws_error_code": "ValidationException"}
    status = errors.from_backend_error(
        BackendError(code="ValidationException", message="bad", request_id="R"), table=""
    )
    assert dict(_one_error_info(status).metadata) == {
        "aws_error_code": "ValidationException",
        "aws_request_id": "R",
    }


def test_empty_message_falls_back_to_the_code() -> None:
    status = errors.from_backend_error(BackendError(code="ResourceNotFoundException", message=""))
    assert status.message == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("retry_after_s", "expected_s"), [(None, 0.1), (2.5, 2.5), (0.0, 0.0), (0.4, 0.4), (30.0, 30.0)]
)
def test_retry_info_honours_retry_after_or_defaults_to_100ms(
    retry_after_s: float | None, expected_s: float
) -> None:
    error = BackendError(
        code="ProvisionedThroughputExceededException", message="slow down", retry_after_s=retry_after_s
    )
    assert _retry_delay_s(errors.from_backend_error(error)) == pytest.approx(expected_s, abs=1e-9)


def test_no_retry_info_on_a_non_retryable_error_even_with_retry_after() -> None:
    error = BackendError(code="ConditionalCheckFailedException", message="m", retry_after_s=1.0)
    assert _retry_delay_s(errors.from_backend_error(error)) is None


# Every kind of status the gateway sends, to check what all of them share.
STATUS_BUILDERS: dict[str, Callable[[], status_pb2.Status]] = {
    "backend-error": lambda: errors.from_backend_error(_aws_error("ThrottlingException"), "t"),
    "condition": lambda: errors.from_backend_error(
        BackendError(code="ConditionalCheckFailedException", message="m", item={"pk": {"S": "a"}})
    ),
    "transaction": lambda: errors.from_backend_error(
        BackendError(code="TransactionCanceledException", message="m", cancellation_reasons=REASONS)
    ),
    "unavailable": lambda: errors.from_backend_error(BackendUnavailableError("ReadTimeoutError", "slow")),
    "no-credentials": lambda: errors.from_backend_error(BackendUnavailableError("NoCredentials", "none")),
    "invalid-request": lambda: errors.from_invalid_request(codec.InvalidRequestError("limit", "negative")),
    "deadline": lambda: errors.from_deadline(
        DeadlineExceededError("GetItem", _aws_error("ThrottlingException"))
    ),
    "circuit-open": lambda: errors.from_circuit_open(CircuitOpenError("dynamodb.eu-west-1", 12.0)),
    "outcome-unknown": lambda: errors.from_outcome_unknown(
        OutcomeUnknownError("UpdateItem", "it adds", _aws_error("InternalServerError"))
    ),
    "internal": lambda: errors.internal("abc"),
}


@pytest.mark.parametrize("build", STATUS_BUILDERS.values(), ids=STATUS_BUILDERS.keys())
def test_every_status_has_exactly_one_error_info_of_our_domain(
    build: Callable[[], status_pb2.Status],
) -> None:
    status = build()
    info = _one_error_info(status)
    assert info.domain == "dynamo-gateway"
    leaf = taxonomy.BY_REASON[info.reason]
    assert status.code == grpc.StatusCode[leaf.grpc_code].value[0]
    assert "" not in dict(info.metadata).values()


# ---------------------------------------------------------------- no answer from DynamoDB


@pytest.mark.parametrize(
    ("failure", "reason", "number", "retryable", "cls"),
    [
        ("NoCredentials", "Authentication.CredentialsNotFound", UNAVAILABLE, False, client_errors.CredentialsNotFoundError),
        ("NoRegion", "Configuration.InvalidRegion", FAILED_PRECONDITION, False, client_errors.InvalidRegionError),
        ("EndpointConnectionError", "Service.ServiceUnavailable", UNAVAILABLE, True, client_errors.ServiceUnavailableError),
        ("ConnectTimeoutError", "Service.ServiceUnavailable", UNAVAILABLE, True, client_errors.ServiceUnavailableError),
        ("ReadTimeoutError", "Service.ServiceUnavailable", UNAVAILABLE, True, client_errors.ServiceUnavailableError),
    ],
)  # fmt: skip
def test_backend_unavailable(failure: str, reason: str, number: int, retryable: bool, cls: type) -> None:
    error = BackendUnavailableError(failure, "no answer in 2s", ambiguous=failure == "ReadTimeoutError")
    assert failures.leaf_of(error).reason == reason
    assert failures.is_retryable(error) is retryable
    status = errors.from_backend_error(error, table="orders")
    assert status.code == number
    assert status.message == "no answer in 2s"
    info = _one_error_info(status)
    assert info.reason == reason
    assert dict(info.metadata) == {"failure": failure, "table": "orders"}
    assert (_retry_delay_s(status) is not None) is retryable
    client_error = _over_the_wire(status)
    assert type(client_error) is cls
    assert client_error.retryable is retryable
    assert client_error.metadata["failure"] == failure


def test_backend_unavailable_retry_after_is_honoured() -> None:
    error = BackendUnavailableError("EndpointConnectionError", "refused", retry_after_s=2.0)
    assert _retry_delay_s(errors.from_backend_error(error)) == pytest.approx(2.0)


# ---------------------------------------------------------------- the resilience layer's own failures


def test_from_deadline_without_an_attempt() -> None:
    status = errors.from_deadline(DeadlineExceededError("GetItem"), table="orders")
    assert status.code == DEADLINE_EXCEEDED
    info = _one_error_info(status)
    assert info.reason == "Service.DeadlineExceeded"
    assert dict(info.metadata) == {"table": "orders"}
    assert _retry_delay_s(status) == pytest.approx(0.1)
    assert "last attempt" not in status.message


def test_from_deadline_names_the_last_failure() -> None:
    last = BackendError(code="ProvisionedThroughputExceededException", message="slow down")
    status = errors.from_deadline(DeadlineExceededError("Query", last), table="orders")
    info = _one_error_info(status)
    assert dict(info.metadata) == {
        "table": "orders",
        "last_failure": "Throughput.ProvisionedThroughputExceeded",
    }
    assert "slow down" in status.message
    client_error = _over_the_wire(status)
    assert type(client_error) is client_errors.DeadlineExceededError
    assert client_error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert client_error.retryable


def test_from_circuit_open() -> None:
    status = errors.from_circuit_open(CircuitOpenError("dynamodb.eu-west-1", retry_after_s=12.5), table="t")
    assert status.code == UNAVAILABLE
    info = _one_error_info(status)
    assert info.reason == "Service.ServiceUnavailable"
    assert dict(info.metadata) == {"circuit": "open", "table": "t"}
    assert _retry_delay_s(status) == pytest.approx(12.5)
    client_error = _over_the_wire(status)
    assert type(client_error) is client_errors.ServiceUnavailableError
    assert client_error.retry_after_s == pytest.approx(12.5)
    assert not client_error.outcome_unknown


def test_from_outcome_unknown_of_a_5xx() -> None:
    cause = BackendError(code="InternalServerError", message="oops", http_status=500, request_id="AWS9")
    error = OutcomeUnknownError("UpdateItem", "it adds to a number", cause, retry_after_s=0.2)
    status = errors.from_outcome_unknown(error, table="counters")
    assert status.code == UNAVAILABLE
    assert "UpdateItem" in status.message
    assert "it adds to a number" in status.message
    info = _one_error_info(status)
    assert info.reason == "Service.ServiceUnavailable"
    assert dict(info.metadata) == {
        "table": "counters",
        "outcome": "unknown",
        "aws_error_code": "InternalServerError",
        "aws_request_id": "AWS9",
    }
    (outcome,) = _of_type(status, errors_pb2.OutcomeUnknown)
    assert (outcome.operation, outcome.reason) == ("UpdateItem", "it adds to a number")
    assert _retry_delay_s(status) == pytest.approx(0.2)
    client_error = _over_the_wire(status)
    assert type(client_error) is client_errors.ServiceUnavailableError
    assert client_error.outcome_unknown
    assert client_error.retry_after_s == pytest.approx(0.2)
    assert client_error.metadata["outcome"] == "unknown"


def test_from_outcome_unknown_of_a_lost_connection() -> None:
    cause = BackendUnavailableError("ReadTimeoutError", "no answer", ambiguous=True)
    status = errors.from_outcome_unknown(OutcomeUnknownError("PutItem", "it has a condition", cause))
    info = _one_error_info(status)
    assert dict(info.metadata) == {"outcome": "unknown", "failure": "ReadTimeoutError"}
    assert _retry_delay_s(status) == pytest.approx(0.1)
    assert len(_of_type(status, errors_pb2.OutcomeUnknown)) == 1


# ---------------------------------------------------------------- our own validation


@pytest.mark.parametrize(
    ("reason", "cls"),
    [
        ("Validation.InvalidParameter", client_errors.InvalidParameterError),
        ("Validation.TypeMismatch", client_errors.TypeMismatchError),
        ("Validation.MissingRequiredKey", client_errors.MissingRequiredKeyError),
        ("Configuration.InvalidTable", client_errors.InvalidTableError),
    ],
)
def test_from_invalid_request_uses_the_errors_leaf(reason: str, cls: type) -> None:
    status = errors.from_invalid_request(codec.InvalidRequestError("item.a.b[2]", "too many digits", reason))
    assert status.code == INVALID_ARGUMENT
    assert "item.a.b[2]" in status.message
    assert "too many digits" in status.message
    info = _one_error_info(status)
    assert info.reason == reason
    assert dict(info.metadata) == {"field": "item.a.b[2]"}
    (bad_request,) = _of_type(status, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("item.a.b[2]", "too many digits")
    ]
    assert _retry_delay_s(status) is None
    client_error = _over_the_wire(status)
    assert type(client_error) is cls
    assert client_error.field_violations == [("item.a.b[2]", "too many digits")]
    assert not client_error.retryable


def test_invalid_request_defaults_to_invalid_parameter() -> None:
    status = errors.from_invalid_request(codec.InvalidRequestError("limit", "must be positive"))
    assert _one_error_info(status).reason == "Validation.InvalidParameter"


def test_from_invalid_request_of_a_real_codec_error() -> None:
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.check_number("NaN", "key.pk")
    status = errors.from_invalid_request(caught.value)
    assert _one_error_info(status).reason == "Validation.TypeMismatch"
    (bad_request,) = _of_type(status, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "key.pk"


# ---------------------------------------------------------------- the servicer's dispatch


@pytest.mark.parametrize(
    ("error", "reason", "number"),
    [
        (codec.InvalidRequestError("limit", "negative"), "Validation.InvalidParameter", INVALID_ARGUMENT),
        (BackendError(code="ResourceNotFoundException", message="m"), "Service.ResourceNotFound", NOT_FOUND),
        (BackendUnavailableError("NoRegion", "m"), "Configuration.InvalidRegion", FAILED_PRECONDITION),
        (DeadlineExceededError("GetItem"), "Service.DeadlineExceeded", DEADLINE_EXCEEDED),
        (CircuitOpenError("e", 1.0), "Service.ServiceUnavailable", UNAVAILABLE),
        (
            OutcomeUnknownError("UpdateItem", "adds", BackendUnavailableError("ReadTimeoutError", "m", True)),
            "Service.ServiceUnavailable",
            UNAVAILABLE,
        ),
    ],
    ids=["invalid-request", "backend", "unavailable", "deadline", "circuit", "outcome"],
)
def test_status_for_dispatches_each_failure(error: Exception, reason: str, number: int) -> None:
    status = errors.status_of(error, "orders")
    assert status.code == number
    assert _one_error_info(status).reason == reason


def test_internal_says_only_the_request_id() -> None:
    status = errors.internal("abc123")
    assert status.code == INTERNAL
    assert status.message == "internal error (request id abc123)"
    info = _one_error_info(status)
    assert info.reason == "Service.Internal"
    assert dict(info.metadata) == {"request_id": "abc123"}
    assert len(status.details) == 1


def test_unexpected_exception_becomes_internal_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    secret = "password=hunter2 at /srv/app.py line 7"
    with caplog.at_level(logging.ERROR):
        status = errors.status_of(RuntimeError(secret), "orders")
    assert status.code == INTERNAL
    request_id = dict(_one_error_info(status).metadata)["request_id"]
    assert len(request_id) >= 16
    assert request_id in status.message
    assert "hunter2" not in status.SerializeToString().decode("utf-8", "replace")
    assert "RuntimeError" not in status.message
    # The cause is in the log, under the same request id.
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


# ---------------------------------------------------------------- the client's classes

# Category -> the client's base class, by hand.
CATEGORY_BASES: dict[str, type[client_errors.GatewayError]] = {
    "Configuration": client_errors.ConfigurationError,
    "Authentication": client_errors.AuthenticationError,
    "Validation": client_errors.ValidationError,
    "ConditionalCheck": client_errors.ConditionalCheckError,
    "Throughput": client_errors.ThroughputError,
    "Item": client_errors.ItemError,
    "Transaction": client_errors.TransactionError,
    "Service": client_errors.ServiceError,
    "Caller": client_errors.CallerError,
}


def _public_leaf_classes() -> dict[str, list[type[client_errors.GatewayError]]]:
    """Every GatewayError subclass in the client module with a REASON, by REASON."""
    found: dict[str, list[type[client_errors.GatewayError]]] = {}
    for value in vars(client_errors).values():
        if isinstance(value, type) and issubclass(value, client_errors.GatewayError) and value.REASON:
            found.setdefault(value.REASON, []).append(value)
    return found


def test_the_taxonomy_has_the_categories_the_client_has() -> None:
    assert set(taxonomy.CATEGORIES) == set(CATEGORY_BASES)


@pytest.mark.parametrize("leaf", taxonomy.LEAVES, ids=[leaf.reason for leaf in taxonomy.LEAVES])
def test_every_leaf_has_exactly_one_client_class(leaf: taxonomy.Leaf) -> None:
    classes = _public_leaf_classes().get(leaf.reason, [])
    assert len(classes) == 1, classes
    (cls,) = classes
    assert client_errors.BY_REASON[leaf.reason] is cls
    assert cls.REASON == leaf.reason
    assert issubclass(cls, CATEGORY_BASES[leaf.category])
    for category, base in CATEGORY_BASES.items():
        if category != leaf.category:
            assert not issubclass(cls, base)


def test_the_client_has_no_class_for_a_reason_the_taxonomy_lacks() -> None:
    reasons = {leaf.reason for leaf in taxonomy.LEAVES}
    assert set(client_errors.BY_REASON) == reasons
    assert set(_public_leaf_classes()) == reasons


# ---------------------------------------------------------------- client round trip


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        super().__init__(details)
        self._code = code
        self._details = details
        self._trailing = trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailing


def _over_the_wire(status: status_pb2.Status) -> client_errors.GatewayError:
    trailing = [("grpc-status-details-bin", status.SerializeToString())]
    error = FakeRpcError(GRPC_BY_NUMBER[status.code], status.message, trailing)
    return client_errors.from_rpc_error(error)


def test_trailing_metadata_matches_what_grpc_status_sends() -> None:
    status = errors.internal("x")
    converted = rpc_status.to_status(status)
    assert converted.code == grpc.StatusCode.INTERNAL
    assert converted.trailing_metadata == (("grpc-status-details-bin", status.SerializeToString()),)


def test_client_condition_failed_with_item() -> None:
    item = {
        "pk": {"S": "a"},
        "n": {"N": "2"},
        "d": {"N": "1.25"},
        "ns": {"NS": ["1", "2.5"]},
        "b": {"B": b"\x00"},
        "nested": {"M": {"flag": {"BOOL": True}, "nothing": {"NULL": True}}},
    }
    status = errors.from_backend_error(
        BackendError(code="ConditionalCheckFailedException", message="failed", request_id="R1", item=item),
        table="t",
    )
    error = _over_the_wire(status)
    assert type(error) is client_errors.ConditionFailedError
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == "failed"
    assert error.reason == "ConditionalCheck.ConditionFailed"
    assert error.retry_after_s is None
    assert error.item == {
        "pk": "a",
        "n": 2,
        "d": Decimal("1.25"),
        "ns": {1, Decimal("2.5")},
        "b": b"\x00",
        "nested": {"flag": True, "nothing": None},
    }


def test_client_condition_failed_without_item() -> None:
    status = errors.from_backend_error(BackendError(code="ConditionalCheckFailedException", message="failed"))
    error = _over_the_wire(status)
    assert isinstance(error, client_errors.ConditionFailedError)
    assert error.item is None


def test_client_transaction_canceled_reasons() -> None:
    status = errors.from_backend_error(
        BackendError(code="TransactionCanceledException", message="cancelled", cancellation_reasons=REASONS)
    )
    error = _over_the_wire(status)
    assert type(error) is client_errors.TransactionCanceledError
    assert error.code == grpc.StatusCode.ABORTED
    assert not error.retryable
    assert error.reasons == [
        client_errors.CancellationReason("None", "", None),
        client_errors.CancellationReason(
            "ConditionalCheckFailed", "The conditional request failed", {"pk": "b", "v": 3}
        ),
        client_errors.CancellationReason("TransactionConflict", "Transaction is ongoing for the item", None),
    ]


def test_client_transaction_conflict_keeps_reasons_and_retry_after() -> None:
    error = BackendError(
        code="TransactionCanceledException",
        message="cancelled",
        cancellation_reasons=[NONE, CONFLICT],
        retry_after_s=0.4,
    )
    client_error = _over_the_wire(errors.from_backend_error(error))
    assert type(client_error) is client_errors.TransactionConflictError
    assert client_error.retry_after_s == pytest.approx(0.4)
    assert [r.code for r in client_error.reasons] == ["None", "TransactionConflict"]


@pytest.mark.parametrize("retry_after_s", [0.05, 1.6, 25.6])
def test_client_decodes_retry_after(retry_after_s: float) -> None:
    error = BackendError(code="ThrottlingException", message="slow down", retry_after_s=retry_after_s)
    client_error = _over_the_wire(errors.from_backend_error(error))
    assert type(client_error) is client_errors.ThrottlingError
    assert client_error.retryable
    assert client_error.retry_after_s == pytest.approx(retry_after_s, abs=1e-9)


def test_client_errors_are_exceptions_that_name_the_code() -> None:
    error = _over_the_wire(
        errors.from_invalid_request(codec.InvalidRequestError("item.a", "NULL must be true"))
    )
    assert isinstance(error, Exception)
    assert str(error) == "INVALID_ARGUMENT: invalid item.a: NULL must be true"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, client_errors.ValidationError),
        (grpc.StatusCode.FAILED_PRECONDITION, client_errors.ConditionalCheckError),
        (grpc.StatusCode.NOT_FOUND, client_errors.ResourceNotFoundError),
        (grpc.StatusCode.ABORTED, client_errors.TransactionError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, client_errors.ThroughputError),
        (grpc.StatusCode.UNAVAILABLE, client_errors.ServiceUnavailableError),
        (grpc.StatusCode.PERMISSION_DENIED, client_errors.AccessDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, client_errors.AuthenticationError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, client_errors.DeadlineExceededError),
        (grpc.StatusCode.INTERNAL, client_errors.InternalError),
        (grpc.StatusCode.UNKNOWN, client_errors.GatewayError),
        (grpc.StatusCode.UNIMPLEMENTED, client_errors.GatewayError),
    ],
)
def test_client_without_status_details_uses_the_grpc_code(code: grpc.StatusCode, expected: type) -> None:
    for trailing in (None, [("some-other-key", "v")]):
        error = client_errors.from_rpc_error(FakeRpcError(code, "from a proxy", trailing))
        assert type(error) is expected
        assert error.code == code
        assert error.reason == ""
        assert error.message == "from a proxy"
        assert error.metadata == {}
        assert error.retry_after_s is None


def test_client_falls_back_on_the_grpc_code_for_a_reason_it_does_not_know() -> None:
    info = error_details_pb2.ErrorInfo(reason="Throughput.SomethingNew", domain="dynamo-gateway")
    status = status_pb2.Status(code=RESOURCE_EXHAUSTED, message="new")
    status.details.add().Pack(info)
    error = _over_the_wire(status)
    assert type(error) is client_errors.ThroughputError
    assert error.reason == "Throughput.SomethingNew"


def test_client_ignores_details_it_does_not_know() -> None:
    status = errors.from_backend_error(_aws_error("ThrottlingException"))
    status.details.add().Pack(error_details_pb2.DebugInfo(detail="x"))
    error = _over_the_wire(status)
    assert type(error) is client_errors.ThrottlingError
    assert error.retryable


def test_client_internal() -> None:
    internal = _over_the_wire(errors.internal("id9"))
    assert type(internal) is client_errors.InternalError
    assert internal.code == grpc.StatusCode.INTERNAL
    assert internal.metadata == {"request_id": "id9"}
    assert not internal.retryable
