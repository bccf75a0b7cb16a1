"""Backends: where DynamoDB requests go. One seam (DynamoBackend), several implementations.

aws.AwsBackend talks to DynamoDB or any endpoint speaking its protocol;
memory.MemoryBackend runs an embedded DynamoDB-compatible engine. The failure
types of the seam live in base.py.
"""

from .base import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    DynamoBackend,
    OutcomeUnknownError,
    ReplayMismatchError,
)

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "CircuitOpenError",
    "DeadlineExceededError",
    "DynamoBackend",
    "OutcomeUnknownError",
    "ReplayMismatchError",
]
