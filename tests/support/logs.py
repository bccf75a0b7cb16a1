"""The gateway's logs captured through the real formatter: configure_logging into a buffer, in JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dynamo_gateway_server.observability.logs import LoggingSetup, configure_logging


@dataclass
class CapturedLogs:
    stream: io.StringIO = field(default_factory=io.StringIO)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def capture_logs() -> Iterator[Callable[..., CapturedLogs]]:
    """configure_logging into a buffer, in JSON; undone after the test."""
    setups: list[LoggingSetup] = []

    def capture(level: str = "INFO", environ: dict[str, str] | None = None) -> CapturedLogs:
        captured = CapturedLogs()
        setups.append(configure_logging(level, "json", stream=captured.stream, environ=environ))
        return captured

    yield capture
    for setup in setups:
        setup.close()
    logging.getLogger().setLevel(logging.WARNING)
