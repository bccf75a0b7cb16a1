"""The two flavours of the facade: DynamoDBClient (sync, like boto3.client("dynamodb"))
and AsyncDynamoDBClient (awaitable methods, like aiobotocore's client).

Both share one path per call: botocore validates the parameters (unless the client's
Config says parameter_validation=False: then _unvalidated answers as DynamoDB), _translate builds
the proto request, the gRPC stub sends it, _translate shapes the answer as boto3's
dict and _errors turns failures into botocore's exceptions. Only the transport
differs (grpc vs grpc.aio). Paginators for query and scan are botocore's own
(sync) and _paging's port of its page loop (async), so PaginationConfig behaves the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from botocore.config import Config
from botocore.exceptions import OperationNotPageableError
from botocore.paginate import Paginator

from dynamo_gateway.v1 import service_pb2_grpc

from ..client import CHANNEL_OPTIONS
from . import _errors, _legacy, _model, _translate, _unvalidated
from ._failures import LocalValidationError, UnsupportedOperationError
from ._paging import AsyncPaginator
from ._translate import OPERATIONS, Operation

_PAGEABLE = ("query", "scan")


class _Facade:
    """What both flavours share: the channel, preparing requests, shaping answers, unsupported calls."""

    # grpc for the sync flavour, grpc.aio for the async one.
    _channels: Any = grpc

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float | None = 30.0,
        gateway_batches: bool = False,
        options: Sequence[tuple[str, Any]] = (),
        metadata: Sequence[tuple[str, str]] = (),
        config: Config | None = None,
    ) -> None:
        channel_options = [*CHANNEL_OPTIONS, *options]
        if credentials is None:
            self.channel = self._channels.insecure_channel(target, options=channel_options)
        else:
            self.channel = self._channels.secure_channel(target, credentials, options=channel_options)
        self.stub = service_pb2_grpc.DynamoDBServiceStub(self.channel)
        self.target = target
        # Sent with every call, e.g. [("authorization", "Bearer ...")] for a gateway that checks callers.
        self.metadata = tuple(metadata) or None
        # Deadline of each call; the gateway fits its retries into it.
        self.timeout_s = timeout_s
        # False (the default) refuses batches beyond DynamoDB's 25 writes / 100 keys as DynamoDB
        # does; True lets the gateway split them (up to its --batch-max-items).
        self.gateway_batches = gateway_batches
        # boto3's client settings. parameter_validation is honoured; retries and timeouts are the
        # gateway's and timeout_s's, so the rest of Config has nothing to change here.
        self.config = config or Config()
        # (botocore-stubs types Config's options as constructor arguments only.)
        self.parameter_validation = bool(getattr(self.config, "parameter_validation", True))

    @property
    def exceptions(self) -> Any:
        """The modeled exception classes, as on a boto3 client (ConditionalCheckFailedException, ...)."""
        return _model.exceptions()

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in _PAGEABLE

    def _paging_parts(self, operation_name: str) -> tuple[dict[str, Any], Any]:
        if not self.can_paginate(operation_name):
            raise OperationNotPageableError(operation_name=operation_name)
        name = OPERATIONS[operation_name].name
        return _model.paginator_configs()[name], _model.operation(name)

    def _prepare(self, python_name: str, params: dict[str, Any]) -> tuple[Operation, Any]:
        operation = OPERATIONS[python_name]
        if self.parameter_validation:
            _model.validate(operation.name, params)
        try:
            if not self.parameter_validation:
                # What the validator would have refused gets DynamoDB's own answer instead.
                params = _unvalidated.checked(operation.name, params)
            # Legacy parameters become expressions first, so everything after sees expressions only.
            params = _legacy.translate(operation.name, params)
            if operation.batch:
                request = operation.request(params, limits=not self.gateway_batches)
            else:
                request = operation.request(params)
        except LocalValidationError as error:
            raise _errors.local_validation_error(
                error.worded(operation.name), operation.name, error.code
            ) from None
        return operation, request

    @staticmethod
    def _finish(operation: Operation, response: Any, params: dict[str, Any]) -> dict[str, Any]:
        out = _legacy.shaped(operation.name, operation.response(response, params), params)
        # The gateway does not relay DynamoDB's request id on success; the keys keep code that reads them working.
        out["ResponseMetadata"] = _errors.response_metadata(200)
        return out

    def __getattr__(self, name: str) -> Any:
        # Every other boto3 DynamoDB method exists, and says what to use instead.
        if name in _model.python_names():

            def unsupported(*args: Any, **kwargs: Any) -> Any:
                raise UnsupportedOperationError(_translate.unsupported_message(name))

            unsupported.__name__ = name
            return unsupported
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class DynamoDBClient(_Facade):
    """boto3.client("dynamodb")'s data plane, served by dynamo-gateway over a sync gRPC channel."""

    _channels = grpc

    def _call(self, python_name: str, params: dict[str, Any]) -> dict[str, Any]:
        operation, request = self._prepare(python_name, params)
        try:
            response = getattr(self.stub, operation.name)(
                request, timeout=self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as error:
            failure = _errors.to_botocore_error(error, operation.name, self.target)
            raise _legacy.reworded(failure, operation.name, params) from None
        return self._finish(operation, response, params)

    def get_paginator(self, operation_name: str) -> Paginator[dict[str, Any]]:
        config, model = self._paging_parts(operation_name)
        return Paginator(getattr(self, operation_name), config, model)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> DynamoDBClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncDynamoDBClient(_Facade):
    """The same, with awaitable methods over a grpc.aio channel (`async with` closes it)."""

    _channels = grpc.aio

    async def _call(self, python_name: str, params: dict[str, Any]) -> dict[str, Any]:
        operation, request = self._prepare(python_name, params)
        try:
            response = await getattr(self.stub, operation.name)(
                request, timeout=self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as error:
            failure = _errors.to_botocore_error(error, operation.name, self.target)
            raise _legacy.reworded(failure, operation.name, params) from None
        return self._finish(operation, response, params)

    def get_paginator(self, operation_name: str) -> AsyncPaginator:
        config, model = self._paging_parts(operation_name)
        return AsyncPaginator(getattr(self, operation_name), config, model)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncDynamoDBClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _sync_method(python_name: str, name: str) -> Callable[..., dict[str, Any]]:
    def method(self: DynamoDBClient, **kwargs: Any) -> dict[str, Any]:
        return self._call(python_name, kwargs)

    method.__name__ = python_name
    method.__doc__ = f"boto3's {python_name} (DynamoDB {name}), through the gateway."
    return method


def _async_method(python_name: str, name: str) -> Callable[..., Any]:
    async def method(self: AsyncDynamoDBClient, **kwargs: Any) -> dict[str, Any]:
        return await self._call(python_name, kwargs)

    method.__name__ = python_name
    method.__doc__ = f"boto3's {python_name} (DynamoDB {name}), through the gateway; awaitable."
    return method


# Keyword-only methods, as boto3's (which refuse positional arguments too).
for _python_name, _operation in OPERATIONS.items():
    setattr(DynamoDBClient, _python_name, _sync_method(_python_name, _operation.name))
    setattr(AsyncDynamoDBClient, _python_name, _async_method(_python_name, _operation.name))
