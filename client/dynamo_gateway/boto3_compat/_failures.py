"""The facade's own two exceptions, shared by the modules that raise them."""

from __future__ import annotations


class UnsupportedOperationError(NotImplementedError):
    """A boto3 call or parameter the gateway does not serve; the message says what to use instead."""


class LocalValidationError(Exception):
    """A request DynamoDB would refuse with a ValidationException carrying this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
