"""errors.status_of's promises the fuzzers leaned on: a status fits in trailers, and never raises.

gRPC clients drop trailers past 16 KB (some calls past 8 KB), and a status that cannot be
sent is no status at all; a renderer that raises leaves gRPC to answer UNKNOWN with the
Python exception's text.
"""

from __future__ import annotations

import logging

import pytest
from google.rpc import error_details_pb2

from dynamo_gateway_server import codec, errors
from dynamo_gateway_server.versions import VersionConflictError

# What a client accepts in every case (grpc's soft limit), for the message and the details together.
TRAILER_BUDGET_BYTES = 8 * 1024


def _unpacked(status: object, kind: type) -> list:  # type: ignore[type-arg]
    found = []
    for detail in status.details:  # type: ignore[attr-defined]
        message = kind()
        if detail.Unpack(message):
            found.append(message)
    return found


@pytest.mark.parametrize("name", ["a" * 70_000, "ü" * 30_000, "\U0001f600" * 20_000])
def test_a_refusal_that_names_a_huge_field_stays_small(name: str) -> None:
    # In DynamoDB's words too: they are in the metadata as well as in the description.
    error = codec.refused(f"key.{name}", f"Value '{name}' at 'key' failed to satisfy constraint")
    status = errors.status_of(error)
    # The message travels percent-encoded as well as inside the details.
    encoded = len(status.message.encode()) * 3 + len(status.SerializeToString()) * 4 // 3
    assert encoded < TRAILER_BUDGET_BYTES
    (bad_request,) = _unpacked(status, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field.startswith("key.aaa" if name[0] == "a" else "key.")
    assert "bytes)" in bad_request.field_violations[0].field  # says it was cut, and from how long


def test_dynamodb_words_that_quote_a_long_table_name_stay_exact() -> None:
    words = (
        f"1 validation error detected: Value '{'x' * 256}' at 'tableName' failed to satisfy constraint: "
        + ("Member must have length less than or equal to 255")
    )
    status = errors.status_of(codec.refused("table_name", words, "Configuration.InvalidTable"))
    (info,) = _unpacked(status, error_details_pb2.ErrorInfo)
    assert info.metadata["dynamodb_message"] == words


def test_short_text_is_left_as_it_is() -> None:
    assert errors.bounded("invalid key.pk: an empty set") == "invalid key.pk: an empty set"
    at_the_limit = "é" * (errors.MAX_QUOTED_BYTES // 2)  # two bytes each
    assert errors.bounded(at_the_limit) == at_the_limit
    assert errors.bounded(at_the_limit + "é").startswith(at_the_limit + "... (")


def test_half_a_surrogate_pair_in_an_emulator_message_is_replaced() -> None:
    # dynalite quotes an astral character cut in two; protobuf strings must be valid UTF-8.
    text = 'Syntax error; Expected "#" but "\udb26" found.'
    assert errors.bounded(text) == 'Syntax error; Expected "#" but "?" found.'


def test_a_version_past_int64_is_said_in_the_metadata_not_the_typed_detail() -> None:
    conflict = VersionConflictError("app", {"pk": {"S": "a"}}, 1, 10**100, {"version": {"N": "1e100"}})
    status = errors.status_of(conflict)
    (info,) = _unpacked(status, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["current_version"]) == (
        "ConditionalCheck.VersionConflict",
        str(10**100),
    )


def test_a_renderer_that_raises_gives_internal_with_a_leaf_not_the_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(error: object, table: str) -> object:
        raise ValueError("Value out of range: 1e100")

    monkeypatch.setitem(errors._RENDERERS, codec.InvalidRequestError, broken)
    with caplog.at_level(logging.ERROR, logger=errors.__name__):
        status = errors.status_of(codec.InvalidRequestError("key", "bad"))
    (info,) = _unpacked(status, error_details_pb2.ErrorInfo)
    assert info.reason == "Service.Internal"
    assert "out of range" not in status.message
    assert "Value out of range" in caplog.text  # the cause is in the log, under the request id
