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
    # Set by the retry layer when it gives up on a retryable error: when to try again.
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass
class BackendUnavailableError(Exception):
    """No answer from DynamoDB: connection refused or reset, timeout, no credentials."""

    # What failed, e.g. "EndpointConnectionError", "ReadTimeoutError", "NoCredentials".
    reason: str
    message: str
    # True when the request may have reached DynamoDB (read timeout, reset after sending):
    # it may have been applied, so only an idempotent request may be sent again.
    ambiguous: bool = False
    # Set by the retry layer when it gives up: when to try again.
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass
class DeadlineExceededError(Exception):
    """The caller's deadline left no time for (another) DynamoDB attempt."""

    operation: str
    # The retryable error of the last attempt, if there was one.
    last_error: BackendError | BackendUnavailableError | None = None


@dataclass
class CircuitOpenError(Exception):
    """The circuit breaker for this backend is open: failing fast instead of calling DynamoDB."""

    endpoint: str
    retry_after_s: float


@dataclass
class OutcomeUnknownError(Exception):
    """A write that is not safe to repeat failed ambiguously; it may or may not have been applied."""

    operation: str
    # Why repeating it is unsafe, e.g. "the update expression adds to a number".
    why_unsafe: str
    cause: BackendError | BackendUnavailableError
    retry_after_s: float | None = None


class ReplayMismatchError(Exception):
    """No recording answers this call; says which one came nearest and how it differs."""

    def __init__(
        self, operation: str, cassette: str, why: str, nearest_line: int | None, differences: list[str]
    ) -> None:
        self.operation = operation
        self.cassette = cassette
        self.nearest_line = nearest_line
        # How the call differs from the nearest recording, one "path: ..." line each (the first few).
        self.differences = differences
        where = f"; nearest: line {nearest_line}" if nearest_line is not None else ""
        shown = f" ({'; '.join(differences)})" if differences else ""
        super().__init__(f"{operation} is not in cassette {cassette}: {why}{where}{shown}")
