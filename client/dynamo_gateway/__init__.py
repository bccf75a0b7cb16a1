"""Python client for dynamo-gateway: typed async client, values, errors and generated stubs."""

from .client import (
    BatchWriteResult,
    GatewayClient,
    Page,
    SegmentPage,
    TransactConditionCheck,
    TransactDelete,
    TransactPut,
    TransactUpdate,
)
from .errors import (
    BackendUnavailableError,
    CancellationReason,
    ConditionalCheckFailedError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    TableNotFoundError,
    ThrottledError,
    TransactionCanceledError,
)
from .values import from_attribute_value, from_item, to_attribute_value

__all__ = [
    "BackendUnavailableError",
    "BatchWriteResult",
    "CancellationReason",
    "ConditionalCheckFailedError",
    "GatewayClient",
    "GatewayError",
    "InvalidRequestError",
    "Page",
    "PermissionDeniedError",
    "SegmentPage",
    "TableNotFoundError",
    "ThrottledError",
    "TransactConditionCheck",
    "TransactDelete",
    "TransactPut",
    "TransactUpdate",
    "TransactionCanceledError",
    "from_attribute_value",
    "from_item",
    "to_attribute_value",
]
