"""Backends: where DynamoDB requests go. One seam (DynamoBackend), several implementations.

aws.AwsBackend talks to DynamoDB or any endpoint speaking its protocol;
memory.start_memory_backend runs an embedded DynamoDB-compatible engine.
"""

from .base import BackendError, BackendUnavailableError, DynamoBackend

__all__ = ["BackendError", "BackendUnavailableError", "DynamoBackend"]
