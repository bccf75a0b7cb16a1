"""botocore's own description of DynamoDB, loaded once: the service model, its paginators,
parameter validation and modeled exception classes.

The facade validates parameters and builds exceptions with exactly what boto3 uses,
so that mistakes fail the same way (ParamValidationError before any call) and
`client.exceptions.ConditionalCheckFailedException` exists. Imports botocore (the
client's `boto3` extra); nothing outside boto3_compat may import this module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from botocore import loaders
from botocore.errorfactory import BaseClientExceptions, ClientExceptionsFactory
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import OperationModel, ServiceModel, StructureShape
from botocore.validate import ParamValidator

SERVICE = "dynamodb"


@functools.cache
def service_model() -> ServiceModel:
    return ServiceModel(loaders.create_loader().load_service_model(SERVICE, "service-2"), SERVICE)


@functools.cache
def paginator_configs() -> dict[str, Any]:
    loader = loaders.create_loader()
    pagination: dict[str, Any] = loader.load_service_model(SERVICE, "paginators-1")["pagination"]
    return pagination


@functools.cache
def exceptions() -> BaseClientExceptions:
    return ClientExceptionsFactory().create_client_exceptions(service_model())


def exception_class(code: str) -> Callable[[dict[str, Any], str], ClientError]:
    """The modeled exception class for DynamoDB's error code (ClientError for codes it lacks),
    called with botocore's parsed error response and the operation name."""
    # botocore-stubs types from_code as returning an instance (it returns the class), and the
    # response as a TypedDict without the modeled members (message, Item) we pass as botocore does.
    return cast(Callable[[dict[str, Any], str], ClientError], exceptions().from_code(code))


@functools.cache
def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def input_shape(name: str) -> StructureShape:
    shape = operation(name).input_shape
    assert shape is not None  # every DynamoDB operation takes parameters
    return shape


@functools.cache
def python_names() -> dict[str, str]:
    """boto3 method name -> DynamoDB operation name, for every operation of the service."""
    from botocore import xform_name

    return {xform_name(name): name for name in service_model().operation_names}


def validate(operation_name: str, params: dict[str, Any]) -> None:
    """Raises ParamValidationError as boto3 would, before anything is sent."""
    report = ParamValidator().validate(params, input_shape(operation_name))
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def error_members(code: str) -> set[str]:
    """The members DynamoDB's error shape for this code carries (message, Item, ...)."""
    for shape in service_model().error_shapes:
        # Error shapes are structures; the check tells the type checker so.
        if isinstance(shape, StructureShape) and shape.error_code == code:
            return set(shape.members)
    return set()
