"""Server error mapping to google.rpc.Status, and the client's decoding of it back into exceptions."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import grpc
import pytest
from dynamo_gateway import errors as client_errors
from dynamo_gateway.v1 import errors_pb2
from dynamo_gateway_server import codec, errors, service
from dynamo_gateway_server.backends import BackendError, BackendUnavailableError
from google.protobuf import message as pb_message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DETAIL_TYPES: dict[str, type[pb_message.Message]] = {
    "google.rpc.ErrorInfo": error_details_pb2.ErrorInfo,
    "google.rpc.BadRequest": error_details_pb2.BadRequest,
    "dynamo_gateway.v1.ConditionalCheckFailure": errors_pb2.ConditionalCheckFailure,
    "dynamo_gateway.v1.TransactionCancellation": errors_pb2.TransactionCancellation,
}
GRPC_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


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


def _item_wire(item: Any) -> dict[str, Any]:
    return codec.item_to_wire(item, "x")


# ---------------------------------------------------------------- from_backend_error

# Written out independently of DYNAMODB_ERROR_CODES: google.rpc.Code numbers.
EXPECTED_NUMBERS = {
    "ValidationException": 3,
    "SerializationException": 3,
    "IdempotentParameterMismatchException": 3,
    "ConditionalCheckFailedException": 9,
    "ResourceNotFoundException": 5,
    "ResourceInUseException": 9,
    "TransactionCanceledException": 10,
    "TransactionConflictException": 10,
    "TransactionInProgressException": 10,
    "ProvisionedThroughputExceededException": 8,
    "ThrottlingException": 8,
    "RequestLimitExceeded": 8,
    "LimitExceededException": 8,
    "ItemCollectionSizeLimitExceededException": 8,
    "AccessDeniedException": 7,
    "UnrecognizedClientException": 14,
    "InvalidSignatureException": 14,
    "ExpiredTokenException": 14,
    "MissingAuthenticationTokenException": 14,
    "IncompleteSignatureException": 14,
    "InternalServerError": 14,
    "ServiceUnavailable": 14,
}


def test_every_mapped_code_is_covered_here() -> None:
    assert set(errors.DYNAMODB_ERROR_CODES) == set(EXPECTED_NUMBERS)


@pytest.mark.parametrize(("dynamo_code", "grpc_code"), sorted(errors.DYNAMODB_ERROR_CODES.items()))
def test_mapped_codes(dynamo_code: str, grpc_code: grpc.StatusCode) -> None:
    error = BackendError(code=dynamo_code, message="it failed", http_status=400, request_id="REQ123")
    status = errors.from_backend_error(error, table="orders")
    assert status.code == grpc_code.value[0] == EXPECTED_NUMBERS[dynamo_code]
    assert code_pb2.Code.Name(status.code) == grpc_code.name
    assert status.message == "it failed"
    info = _one_error_info(status)
    assert info.reason == dynamo_code
    assert info.domain == "dynamo-gateway"
    assert dict(info.metadata) == {"aws_request_id": "REQ123", "table": "orders"}
    extra = {
        "ConditionalCheckFailedException": 1,
        "TransactionCanceledException": 1,
    }.get(dynamo_code, 0)
    assert len(status.details) == 1 + extra


def test_mapping_ignores_http_status_for_known_codes() -> None:
    status = errors.from_backend_error(BackendError(code="ThrottlingException", message="m", http_status=500))
    assert status.code == code_pb2.RESOURCE_EXHAUSTED


def test_metadata_leaves_out_what_is_unknown() -> None:
    status = errors.from_backend_error(BackendError(code="ValidationException", message="bad"))
    assert dict(_one_error_info(status).metadata) == {}
    status = errors.from_backend_error(BackendError(code="ValidationException", message="bad"), table="t")
    assert dict(_one_error_info(status).metadata) == {"table": "t"}


def test_empty_message_falls_back_to_the_code() -> None:
    status = errors.from_backend_error(BackendError(code="ResourceNotFoundException", message=""))
    assert status.message == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("http_status", "expected"),
    [(500, code_pb2.UNAVAILABLE), (503, code_pb2.UNAVAILABLE), (599, code_pb2.UNAVAILABLE),
     (400, code_pb2.UNKNOWN), (404, code_pb2.UNKNOWN), (499, code_pb2.UNKNOWN)],
)  # fmt: skip
def test_unknown_codes_fall_back_on_http_status(http_status: int, expected: int) -> None:
    error = BackendError(code="SomethingNewException", message="huh", http_status=http_status, request_id="r")
    status = errors.from_backend_error(error)
    assert status.code == expected
    assert errors.grpc_code_for(error).value[0] == expected
    info = _one_error_info(status)
    assert info.reason == "SomethingNewException"
    assert len(status.details) == 1


def test_conditional_check_failed_carries_the_old_item() -> None:
    item = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "tags": {"SS": ["x", "y"]}, "m": {"M": {"l": {"L": []}}}}
    error = BackendError(
        code="ConditionalCheckFailedException", message="The conditional request failed", item=item
    )
    status = errors.from_backend_error(error, table="t")
    assert status.code == code_pb2.FAILED_PRECONDITION
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
    assert status.code == code_pb2.ABORTED
    (cancellation,) = _of_type(status, errors_pb2.TransactionCancellation)
    assert [(r.code, r.message) for r in cancellation.reasons] == [
        ("None", ""),
        ("ConditionalCheckFailed", "The conditional request failed"),
        ("TransactionConflict", "Transaction is ongoing for the item"),
    ]
    assert [_item_wire(r.item) for r in cancellation.reasons] == [{}, REASONS[1]["Item"], {}]


# ---------------------------------------------------------------- our own statuses


def test_from_invalid_request() -> None:
    status = errors.from_invalid_request(codec.InvalidRequestError("item.a.b[2]", "too many digits"))
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "item.a.b[2]" in status.message
    assert "too many digits" in status.message
    info = _one_error_info(status)
    assert info.reason == "INVALID_REQUEST"
    assert info.domain == "dynamo-gateway"
    assert dict(info.metadata) == {"field": "item.a.b[2]"}
    (bad_request,) = _of_type(status, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("item.a.b[2]", "too many digits")
    ]


def test_from_invalid_request_of_a_real_codec_error() -> None:
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.check_number("NaN", "key.pk")
    status = errors.from_invalid_request(caught.value)
    (bad_request,) = _of_type(status, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "key.pk"


def test_from_unavailable() -> None:
    status = errors.from_unavailable(
        BackendUnavailableError(reason="CONNECT_TIMEOUT", message="no answer in 2s")
    )
    assert status.code == code_pb2.UNAVAILABLE
    assert status.message == "no answer in 2s"
    info = _one_error_info(status)
    assert info.reason == "CONNECT_TIMEOUT"
    assert len(status.details) == 1


def test_internal_says_only_the_request_id() -> None:
    status = errors.internal("abc123")
    assert status.code == code_pb2.INTERNAL
    assert "abc123" in status.message
    assert status.message == "internal error (request id abc123)"
    info = _one_error_info(status)
    assert info.reason == "INTERNAL"
    assert dict(info.metadata) == {"request_id": "abc123"}
    assert len(status.details) == 1


def test_unexpected_exception_becomes_internal_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    secret = "password=hunter2 at /srv/app.py line 7"
    with caplog.at_level(logging.ERROR):
        status = service._status_for(RuntimeError(secret), "orders")
    assert status.code == code_pb2.INTERNAL
    request_id = dict(_one_error_info(status).metadata)["request_id"]
    assert len(request_id) >= 16
    assert request_id in status.message
    assert "hunter2" not in status.SerializeToString().decode("utf-8", "replace")
    assert "RuntimeError" not in status.message
    # The cause is in the log, under the same request id.
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


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


def test_client_conditional_check_failed_with_item() -> None:
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
    assert type(error) is client_errors.ConditionalCheckFailedError
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == "failed"
    assert error.reason == "ConditionalCheckFailedException"
    assert error.metadata == {"aws_request_id": "R1", "table": "t"}
    assert error.item == {
        "pk": "a",
        "n": 2,
        "d": Decimal("1.25"),
        "ns": {1, Decimal("2.5")},
        "b": b"\x00",
        "nested": {"flag": True, "nothing": None},
    }


def test_client_conditional_check_failed_without_item() -> None:
    status = errors.from_backend_error(BackendError(code="ConditionalCheckFailedException", message="failed"))
    error = _over_the_wire(status)
    assert isinstance(error, client_errors.ConditionalCheckFailedError)
    assert error.item is None


def test_client_transaction_canceled() -> None:
    status = errors.from_backend_error(
        BackendError(code="TransactionCanceledException", message="cancelled", cancellation_reasons=REASONS)
    )
    error = _over_the_wire(status)
    assert type(error) is client_errors.TransactionCanceledError
    assert error.code == grpc.StatusCode.ABORTED
    assert error.reasons == [
        client_errors.CancellationReason("None", "", None),
        client_errors.CancellationReason(
            "ConditionalCheckFailed", "The conditional request failed", {"pk": "b", "v": 3}
        ),
        client_errors.CancellationReason("TransactionConflict", "Transaction is ongoing for the item", None),
    ]


def test_client_invalid_request() -> None:
    status = errors.from_invalid_request(codec.InvalidRequestError("item.a", "NULL must be true"))
    error = _over_the_wire(status)
    assert type(error) is client_errors.InvalidRequestError
    assert error.reason == "INVALID_REQUEST"
    assert error.field_violations == [("item.a", "NULL must be true")]
    assert error.metadata == {"field": "item.a"}
    assert "INVALID_ARGUMENT" in str(error)


@pytest.mark.parametrize(
    ("dynamo_code", "http_status", "expected"),
    [
        ("ProvisionedThroughputExceededException", 400, client_errors.ThrottledError),
        ("ThrottlingException", 400, client_errors.ThrottledError),
        ("ResourceNotFoundException", 400, client_errors.TableNotFoundError),
        ("ValidationException", 400, client_errors.InvalidRequestError),
        ("AccessDeniedException", 400, client_errors.PermissionDeniedError),
        ("InternalServerError", 500, client_errors.BackendUnavailableError),
        ("TransactionConflictException", 400, client_errors.GatewayError),
        ("ResourceInUseException", 400, client_errors.GatewayError),
        ("BrandNewException", 400, client_errors.GatewayError),
    ],
)
def test_client_classes_by_code(dynamo_code: str, http_status: int, expected: type) -> None:
    status = errors.from_backend_error(
        BackendError(code=dynamo_code, message="m", http_status=http_status, request_id="Q"), table="t"
    )
    error = _over_the_wire(status)
    assert type(error) is expected
    assert error.reason == dynamo_code
    assert error.metadata == {"aws_request_id": "Q", "table": "t"}
    assert error.field_violations == []


def test_client_without_status_details_uses_the_grpc_code() -> None:
    error = client_errors.from_rpc_error(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", None))
    assert type(error) is client_errors.ThrottledError
    assert error.reason == ""
    assert error.message == "slow down"
    other = client_errors.from_rpc_error(
        FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone", [("some-other-key", "v")])
    )
    assert type(other) is client_errors.TableNotFoundError


def test_client_unavailable_and_internal() -> None:
    error = _over_the_wire(errors.from_unavailable(BackendUnavailableError("READ_TIMEOUT", "slow")))
    assert type(error) is client_errors.BackendUnavailableError
    assert error.reason == "READ_TIMEOUT"
    internal = _over_the_wire(errors.internal("id9"))
    assert type(internal) is client_errors.GatewayError
    assert internal.code == grpc.StatusCode.INTERNAL
    assert internal.metadata == {"request_id": "id9"}
