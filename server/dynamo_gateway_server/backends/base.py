"""The backend seam: one narrow async callable that sends one DynamoDB operation.

Requests and responses are DynamoDB's own parameter shapes (botocore's dicts), so a
unit-test fake is a single `async def`. Must not import gRPC or the codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class DynamoBackend(Protocol):
    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Runs one DynamoDB operation (e.g. "GetItem") and returns its response.

        Raises BackendError when DynamoDB answered with an error, and
        BackendUnavailableError when no answer could be had.
        """
        ...

    async def close(self) -> None: ...


@dataclass
class BackendError(Exception):
    """DynamoDB answered with an error. Keeps its payload for the error details."""

    code: str
    message: str
    http_status: int = 400
    request_id: str = ""
    # The item as it was, on a failed condition with ReturnValuesOnConditionCheckFailure=ALL_OLD.
    item: dict[str, Any] | None = None
    # TransactionCanceledException's reasons, in request order.
    cancellation_reasons: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass
class BackendUnavailableError(Exception):
    """No answer from DynamoDB: connection refused or reset, timeout, no credentials."""

    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
