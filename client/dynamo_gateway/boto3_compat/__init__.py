"""A boto3-shaped DynamoDB client served by dynamo-gateway: switch with one line.

    dynamodb = boto3.client("dynamodb")                                    # before
    dynamodb = dynamo_gateway.boto3_compat.client("dynamodb", target="gateway:50051")  # after

Same method names, keyword arguments, request and response dicts and exceptions
(botocore's ClientError subclasses with DynamoDB's Error.Code, Message, Item and
CancellationReasons) as boto3's low-level client for every data-plane operation,
plus describe_table and paginators for query and scan. `async_client` gives the
same with awaitable methods. Control-plane calls raise UnsupportedOperationError
naming what to use instead.

Needs botocore: install the client with its `boto3` extra. `import dynamo_gateway`
never imports this package, so the plain client works without it.
"""

from __future__ import annotations

from typing import Any

from ._clients import AsyncDynamoDBClient, DynamoDBClient
from ._failures import UnsupportedOperationError
from ._paging import AsyncPageIterator, AsyncPaginator

__all__ = [
    "AsyncDynamoDBClient",
    "AsyncPageIterator",
    "AsyncPaginator",
    "DynamoDBClient",
    "UnsupportedOperationError",
    "async_client",
    "client",
]


def _check_service(service_name: str) -> None:
    if service_name != "dynamodb":
        raise UnsupportedOperationError(f"dynamo-gateway serves DynamoDB only, not {service_name!r}")


def client(service_name: str = "dynamodb", *, target: str, **options: Any) -> DynamoDBClient:
    """Like boto3.client("dynamodb"), for the gateway at target ("host:port").

    Options: credentials (grpc.ChannelCredentials; None is plaintext), timeout_s (each
    call's deadline), gateway_batches (let the gateway split batches beyond DynamoDB's
    limits instead of refusing them), options (gRPC channel options), metadata (sent with every
    call, e.g. an authorization header), config (a botocore.config.Config, as boto3.client
    takes: parameter_validation=False skips botocore's validator, and what it would have
    refused gets DynamoDB's own answer).
    """
    _check_service(service_name)
    return DynamoDBClient(target, **options)


def async_client(service_name: str = "dynamodb", *, target: str, **options: Any) -> AsyncDynamoDBClient:
    """The same with awaitable methods; use `async with async_client(...) as dynamodb:`."""
    _check_service(service_name)
    return AsyncDynamoDBClient(target, **options)
