"""The aws backend as the tests point it at an emulator: options, a started backend, backoffs that do not wait."""

from __future__ import annotations

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
