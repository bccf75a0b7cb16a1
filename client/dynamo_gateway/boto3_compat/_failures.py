"""The facade's own two exceptions, shared by the modules that raise them."""

from __future__ import annotations

from .. import dynamodb_messages


class UnsupportedOperationError(NotImplementedError):
    """A boto3 call or parameter the gateway does not serve; the message says what to use instead."""


class LocalValidationError(Exception):
    """A request DynamoDB would refuse with a ValidationException (or `code`) carrying this message.

    `family` names the message's family in dynamodb_messages.ENVELOPED when DynamoDB
    envelopes it in some operations only; worded() gives the text for one operation.
    """

    def __init__(self, message: str, *, code: str = "ValidationException", family: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.family = family

    def worded(self, operation_name: str) -> str:
        """The message as DynamoDB words it in `operation_name`."""
        if self.family is None:
            return self.message
        return dynamodb_messages.in_envelope(self.family, operation_name, self.message)
