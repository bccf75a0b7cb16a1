"""Secrets that must never reach a log line, a metric or an error: a wrapper and a redactor.

Owns: SecretString (str and repr say "***"; only reveal() gives the value), the
registry of secret values the log formatters scrub from every line as a second
line of defence, and which gRPC metadata keys carry caller credentials.
Must not import gRPC, the backends or the logging setup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

REDACTED = "***"

# Environment variables of the AWS credential chain whose values are secret.
AWS_SECRET_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)

# Caller metadata that carries credentials; any key ending in one of the suffixes counts too.
SENSITIVE_METADATA_KEYS = frozenset({"authorization", "cookie", "x-api-key", "x-amz-security-token"})
_SENSITIVE_SUFFIXES = ("-token", "-secret", "-key", "-password")

# Shorter values would turn ordinary words into "***" all over the logs.
_MIN_REGISTERED_LENGTH = 8


class SecretString:
    """A string that redacts itself: safe to log, format or put in an exception by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"SecretString({REDACTED!r})"

    def __format__(self, spec: str) -> str:
        return format(REDACTED, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretString) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would carry the value out of the process in clear text.
        raise TypeError("a SecretString cannot be pickled")


class SecretRegistry:
    """Known secret values; redact() replaces each occurrence in a text with "***"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def register(self, secret: SecretString | str) -> None:
        value = secret.reveal() if isinstance(secret, SecretString) else secret
        if len(value) < _MIN_REGISTERED_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                # Longest first, so a secret that contains another is replaced whole.
                self._values = tuple(sorted((*self._values, value), key=len, reverse=True))

    def forget(self, secret: SecretString | str) -> None:
        """Stops redacting a value: for rotated credentials, so the registry does not grow with every refresh."""
        value = secret.reveal() if isinstance(secret, SecretString) else secret
        with self._lock:
            self._values = tuple(known for known in self._values if known != value)

    def register_environment(self, environ: Mapping[str, str]) -> None:
        for name in AWS_SECRET_VARIABLES:
            if environ.get(name):
                self.register(environ[name])

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def is_sensitive_metadata(key: str) -> bool:
    key = key.lower()
    return key in SENSITIVE_METADATA_KEYS or key.endswith(_SENSITIVE_SUFFIXES)


def safe_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> dict[str, object]:
    """Caller metadata fit for a log line: credentials wrapped, binary values reduced to their size."""
    safe: dict[str, object] = {}
    for key, value in metadata:
        if is_sensitive_metadata(key):
            safe[key] = SecretString(value if isinstance(value, str) else value.decode("latin-1"))
        elif isinstance(value, bytes):
            safe[key] = f"<{len(value)} bytes>"
        else:
            safe[key] = value
    return safe


# The process-wide registry the log formatters consult.
SECRETS = SecretRegistry()
