"""The aws backend as the tests point it at an emulator: options, a started backend, backoffs that do not
wait, and a backend that holds calls until a test lets them go."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from dynamo_gateway_server.backends.aws import AwsBackend, AwsBackendOptions


def backend_options(endpoint_url: str | None, **overrides: Any) -> AwsBackendOptions:
    """Options for an emulator on loopback: fixed keys, short timeouts, no SDK retries; overrides win."""
    return AwsBackendOptions(
        **{
            "region": "us-east-1",
            "endpoint_url": endpoint_url,
            "max_concurrency": 32,
            "connect_timeout_s": 2,
            "read_timeout_s": 10,
            "max_attempts": 1,
            "static_credentials": ("test", "test"),
            **overrides,
        }
    )


async def aws_backend_for(endpoint_url: str | None, **overrides: Any) -> AwsBackend:
    """A started AwsBackend with backend_options(endpoint_url, **overrides)."""
    return await AwsBackend.start(backend_options(endpoint_url, **overrides))


async def no_sleep(delay_s: float) -> None:
    """Backoff without waiting: retries happen, the suite does not slow down."""


class HeldCalls:
    """A backend whose calls (those of `operations`, else every one) wait until `opened` is set;
    `reached` is set once one waits."""

    def __init__(self, inner: Any, operations: Collection[str] | None = None) -> None:
        self.inner = inner
        self.operations = operations
        self.opened = asyncio.Event()
        self.reached = asyncio.Event()

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.operations is None or operation in self.operations:
            self.reached.set()
            await self.opened.wait()
        result: dict[str, Any] = await self.inner.call(operation, params)
        return result

    async def close(self) -> None:
        await self.inner.close()
