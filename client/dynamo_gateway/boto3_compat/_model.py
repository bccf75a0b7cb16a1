"""botocore's own description of DynamoDB, loaded once: the service model, its paginators,
parameter validation and modeled exception classes.

The facade validates parameters and builds exceptions with exactly what boto3 uses,
so that mistakes fail the same way (ParamValidationError before any call) and
`client.exceptions.ConditionalCheckFailedException` exists. Imports botocore (the
client's `boto3` extra); nothing outside boto3_compat may import this module.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore import loaders
from botocore.errorfactory import BaseClientExceptions, ClientExceptionsFactory
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, ServiceModel
from botocore.validate import ParamValidator

SERVICE = "dynamodb"


@functools.cache
def service_model() -> ServiceModel:
    return ServiceModel(loaders.create_loader().load_service_model(SERVICE, "service-2"), SERVICE)


@functools.cache
def paginator_configs() -> dict[str, Any]:
    return loaders.create_loader().load_service_model(SERVICE, "paginators-1")["pagination"]


@functools.cache
def exceptions() -> BaseClientExceptions:
    return ClientExceptionsFactory().create_client_exceptions(service_model())


@functools.cache
def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


@functools.cache
def python_names() -> dict[str, str]:
    """boto3 method name -> DynamoDB operation name, for every operation of the service."""
    from botocore import xform_name

    return {xform_name(name): name for name in service_model().operation_names}


def validate(operation_name: str, params: dict[str, Any]) -> None:
    """Raises ParamValidationError as boto3 would, before anything is sent."""
    report = ParamValidator().validate(params, operation(operation_name).input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def enum_values(operation_name: str, member: str) -> list[str]:
    """The values the model allows for a top-level enum parameter."""
    return list(operation(operation_name).input_shape.members[member].enum)


def error_members(code: str) -> set[str]:
    """The members DynamoDB's error shape for this code carries (message, Item, ...)."""
    for shape in service_model().error_shapes:
        if shape.error_code == code:
            return set(shape.members)
    return set()
