"""The client's error seam over real gRPC calls: the status trailer decoded from both the sync
stubs' errors and grpc.aio's, a trailer that disagrees with its call ignored, and call_stream
mapping a stream's failure and cancelling the call when closed early, and a version conflict's
detail decoded into VersionConflictError. A bare grpc.aio server on loopback stands in for the
gateway, so only the client's side is under test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from dynamo_gateway import errors
from dynamo_gateway.v1 import errors_pb2, value_pb2

SERVICE = "test.Errors"
MESSAGE = "The conditional request failed"


def _condition_failed(code: int = code_pb2.FAILED_PRECONDITION, message: str = MESSAGE) -> status_pb2.Status:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="ConditionalCheck.ConditionFailed", domain="dynamo-gateway"))
    return status_pb2.Status(code=code, message=message, details=[info])


CONFLICT_MESSAGE = "expected version 3, the item has version 5"


def _version_conflict(**fields: Any) -> status_pb2.Status:
    """What the gateway sends for a versioned write that found another version."""
    info, conflict = any_pb2.Any(), any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="ConditionalCheck.VersionConflict", domain="dynamo-gateway"))
    conflict.Pack(errors_pb2.VersionConflict(table_name="app", **fields))
    return status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION, message=CONFLICT_MESSAGE, details=[info, conflict]
    )


KEY = {"pk": value_pb2.AttributeValue(s="user#1")}
# A transaction's third action expected version 3 of an item that holds version 5.
CONFLICT_IN_TRANSACTION = _version_conflict(
    key=KEY,
    expected_version=3,
    current_version=5,
    current_item={**KEY, "v": value_pb2.AttributeValue(n="5"), "name": value_pb2.AttributeValue(s="Ada")},
    action_index=2,
)
# A write that expected version 0 of an item that does not exist (0 is a version, not "unset").
CONFLICT_NO_ITEM = _version_conflict(key=KEY, expected_version=0)
# A write that expected no item ("absent") and found one written before versioning.
CONFLICT_UNVERSIONED = _version_conflict(key=KEY, current_item=KEY)
# The ErrorInfo without the VersionConflict detail (a gateway older than its reason, say).
CONFLICT_NO_DETAIL = status_pb2.Status(
    code=code_pb2.FAILED_PRECONDITION, message=CONFLICT_MESSAGE, details=CONFLICT_NO_ITEM.details[:1]
)

# What the server ends each call with: (status code, message, the google.rpc.Status of its trailer).
ENDINGS: dict[bytes, tuple[grpc.StatusCode, str, status_pb2.Status | None]] = {
    b"agrees": (grpc.StatusCode.FAILED_PRECONDITION, MESSAGE, _condition_failed()),
    # A proxy in between replaced the status but passed the gateway's trailer on.
    b"other code": (grpc.StatusCode.UNAVAILABLE, MESSAGE, _condition_failed()),
    b"other message": (grpc.StatusCode.FAILED_PRECONDITION, "upstream said no", _condition_failed()),
    b"no trailer": (grpc.StatusCode.UNAVAILABLE, "no healthy upstream", None),
    b"conflict in transaction": (
        grpc.StatusCode.FAILED_PRECONDITION,
        CONFLICT_MESSAGE,
        CONFLICT_IN_TRANSACTION,
    ),
    b"conflict, no item": (grpc.StatusCode.FAILED_PRECONDITION, CONFLICT_MESSAGE, CONFLICT_NO_ITEM),
    b"conflict, unversioned": (grpc.StatusCode.FAILED_PRECONDITION, CONFLICT_MESSAGE, CONFLICT_UNVERSIONED),
    b"conflict, no detail": (grpc.StatusCode.FAILED_PRECONDITION, CONFLICT_MESSAGE, CONFLICT_NO_DETAIL),
}


class Server:
    def __init__(self) -> None:
        self.stream_cancelled = asyncio.Event()

    async def _end(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        code, message, status = ENDINGS[request]
        trailer = rpc_status.to_status(status).trailing_metadata if status else ()
        await context.abort(code, message, trailer)

    async def fail(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await self._end(request, context)
        raise AssertionError("abort returned")

    async def stream(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        if request == b"forever":
            try:
                while True:
                    yield b"page"
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.stream_cancelled.set()
                raise
        yield b"page 1"
        yield b"page 2"
        await self._end(request, context)


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Server]]:
    handlers = Server()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Fail": grpc.unary_unary_rpc_method_handler(handlers.fail),
                    "Stream": grpc.unary_stream_rpc_method_handler(handlers.stream),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", handlers
    await server.stop(None)


@contextlib.contextmanager
def _sync_channel(target: str) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(target)
    try:
        yield channel
    finally:
        channel.close()


def _sync_error(target: str, request: bytes) -> grpc.RpcError:
    with _sync_channel(target) as channel, pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(f"/{SERVICE}/Fail")(request, timeout=10)
    return raised.value


async def _aio_error(target: str, request: bytes) -> grpc.RpcError:
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"/{SERVICE}/Fail")(request, timeout=10)
    return raised.value


async def _both(target: str, request: bytes) -> list[grpc.RpcError]:
    return [await asyncio.to_thread(_sync_error, target, request), await _aio_error(target, request)]


async def test_the_trailer_is_decoded_from_sync_and_aio_errors(served: tuple[str, Server]) -> None:
    target, _ = served
    for rpc_error in await _both(target, b"agrees"):
        assert errors.status_details(rpc_error) == _condition_failed()
        error = errors.from_rpc_error(rpc_error)
        assert type(error) is errors.ConditionFailedError
        assert (error.code, error.message, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            MESSAGE,
            "ConditionalCheck.ConditionFailed",
        )


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        (b"other code", errors.ServiceUnavailableError),
        (b"other message", errors.ConditionalCheckError),
        (b"no trailer", errors.ServiceUnavailableError),
    ],
)
async def test_a_trailer_that_disagrees_with_its_call_is_ignored(
    served: tuple[str, Server], ending: bytes, expected: type[errors.GatewayError]
) -> None:
    target, _ = served
    code, message, _ = ENDINGS[ending]
    for rpc_error in await _both(target, ending):
        assert errors.status_details(rpc_error) is None
        error = errors.from_rpc_error(rpc_error)
        assert type(error) is expected  # chosen by the call's own code, as without details
        assert (error.code, error.message, error.reason, error.status) == (code, message, "", None)


@pytest.mark.parametrize(
    ("ending", "expected", "current_version", "current_item", "action_index"),
    [
        (b"conflict in transaction", 3, 5, {"pk": "user#1", "v": 5, "name": "Ada"}, 2),
        (b"conflict, no item", 0, None, None, 0),
        (b"conflict, unversioned", None, None, {"pk": "user#1"}, 0),
    ],
)
async def test_a_version_conflict_is_decoded_with_its_detail(
    served: tuple[str, Server],
    ending: bytes,
    expected: int | None,
    current_version: int | None,
    current_item: dict[str, Any] | None,
    action_index: int,
) -> None:
    target, _ = served
    for rpc_error in await _both(target, ending):
        error = errors.from_rpc_error(rpc_error)
        assert type(error) is errors.VersionConflictError
        assert isinstance(error, errors.ConditionalCheckError)
        assert (error.code, error.message, error.reason, error.retryable) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            CONFLICT_MESSAGE,
            "ConditionalCheck.VersionConflict",
            False,
        )
        assert error.key == {"pk": "user#1"}
        assert error.expected_version == expected
        assert error.current_version == current_version
        assert error.current_item == current_item
        assert error.action_index == action_index


async def test_a_version_conflict_without_its_detail_still_has_the_class(served: tuple[str, Server]) -> None:
    target, _ = served
    for rpc_error in await _both(target, b"conflict, no detail"):
        error = errors.from_rpc_error(rpc_error)
        assert type(error) is errors.VersionConflictError
        assert (error.key, error.expected_version, error.current_version, error.current_item) == (
            {},
            None,
            None,
            None,
        )


async def test_call_stream_yields_the_messages_then_raises_the_typed_error(
    served: tuple[str, Server],
) -> None:
    target, _ = served
    async with grpc.aio.insecure_channel(target) as channel:
        method = channel.unary_stream(f"/{SERVICE}/Stream")
        received = []
        with pytest.raises(errors.ConditionFailedError) as raised:
            async for message in errors.call_stream(method, b"agrees", 10):
                received.append(message)
    assert received == [b"page 1", b"page 2"]
    assert raised.value.message == MESSAGE


async def test_closing_call_stream_early_cancels_the_call(served: tuple[str, Server]) -> None:
    target, server = served
    async with grpc.aio.insecure_channel(target) as channel:
        method = channel.unary_stream(f"/{SERVICE}/Stream")
        async with contextlib.aclosing(errors.call_stream(method, b"forever", None)) as messages:
            async for message in messages:
                assert message == b"page"
                break
        await asyncio.wait_for(server.stream_cancelled.wait(), 10)
