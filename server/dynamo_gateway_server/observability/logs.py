"""Structured logs through the standard logging module: JSON lines, or a console format.

Owns the TRACE level (below DEBUG, for full payloads), the two formatters, which
add the trace id, span id and request id to every line and scrub registered
secrets from it, and configure_logging(). Levels: ERROR for auth and service
failures, WARNING for throttling, unprocessed items and retries, INFO for completed
operations (sampled) and transaction commits, DEBUG for requests and expressions,
TRACE for payloads. Must not import gRPC or the backends.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Mapping
from typing import IO, Any

from opentelemetry import trace

from .request_context import current_request_id
from .secrets import SECRETS, SecretRegistry

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR")
# Libraries that are chatty below WARNING (botocore logs request headers at DEBUG). They follow
# the gateway's level only at TRACE, where an operator asked for everything.
NOISY_LOGGERS = ("botocore", "aiobotocore", "urllib3", "aiohttp", "asyncio", "grpc", "opentelemetry")

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    valid = context.is_valid
    return {
        "trace_id": format(context.trace_id, "032x") if valid else "",
        "span_id": format(context.span_id, "016x") if valid else "",
        "request_id": current_request_id(),
    }


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: value for name, value in record.__dict__.items() if name not in _STANDARD}


def _plain(value: Any) -> Any:
    """JSON-safe values; anything else (SecretString included) becomes its str()."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, trace_id, span_id, request_id, fields."""

    def __init__(self, secrets: SecretRegistry = SECRETS) -> None:
        super().__init__()
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": self._secrets.redact(record.getMessage()),
            **_ids(),
        }
        for name, value in _fields(record).items():
            line.setdefault(name, _plain(value))
        if record.exc_info:
            line["exception"] = self._secrets.redact(self.formatException(record.exc_info))
        # Scrub the encoded line too: a secret may sit in a field or an exception's text.
        return self._secrets.redact(json.dumps(line, ensure_ascii=False, default=str))


class ConsoleFormatter(logging.Formatter):
    """For a person at a terminal (`make run`): time, level, logger, message, then key=value fields."""

    def __init__(self, secrets: SecretRegistry = SECRETS) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = {**_fields(record), **{k: v for k, v in _ids().items() if v}}
        if pairs:
            text += " " + " ".join(f"{name}={_plain(value)}" for name, value in pairs.items())
        return self._secrets.redact(text)


class LoggingSetup:
    """What configure_logging changed, so tests (and a second configure) can put it back."""

    def __init__(self, handler: logging.Handler, previous_levels: dict[str, int]) -> None:
        self.handler = handler
        self._previous_levels = previous_levels

    def close(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        for name, level in self._previous_levels.items():
            logging.getLogger(name).setLevel(level)


def configure_logging(
    level: str = "INFO",
    log_format: str = "auto",
    stream: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoggingSetup:
    """Sends every log line to `stream` (stderr) in the chosen format; registers the AWS secrets."""
    stream = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    if environ is not None:
        SECRETS.register_environment(environ)
    numeric = TRACE if level.upper() == "TRACE" else logging.getLevelName(level.upper())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    previous = {"": root.level, **{name: logging.getLogger(name).level for name in NOISY_LOGGERS}}
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric <= TRACE else max(numeric, logging.WARNING))
    return LoggingSetup(handler, previous)
