"""The aws backend: one long-lived aiobotocore DynamoDB client per process.

Serves real AWS (the standard credential chain, a profile or a role: see
security/credentials.py) and any endpoint URL that speaks DynamoDB's protocol
(moto, dynalite, DynamoDB Local). Turns botocore's exceptions
into the seam's BackendError / BackendUnavailableError. Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from botocore import exceptions as botocore_errors
from botocore import xform_name

from ..security.credentials import (
    AwsCredentialsError,
    CredentialOptions,
    RoleCredentials,
    credentialed_session,
)
from .base import BackendError, BackendUnavailableError

# Failures before the request could reach DynamoDB: safe to send again.
_NOT_SENT = (botocore_errors.EndpointConnectionError, botocore_errors.ConnectTimeoutError)
# Failures after it may have reached DynamoDB: it may have been applied.
_AMBIGUOUS = (
    botocore_errors.ReadTimeoutError,
    botocore_errors.ConnectionClosedError,
    botocore_errors.HTTPClientError,
)


@dataclass(frozen=True)
class AwsBackendOptions:
    region: str
    # None: DynamoDB's public endpoint for the region.
    endpoint_url: str | None
    # Size of both the HTTP connection pool and the FIFO gate in front of it.
    max_concurrency: int
    connect_timeout_s: float
    read_timeout_s: float
    # Attempts botocore makes per call (1 = no SDK retries).
    max_attempts: int
    # Static keys, for local emulators only; None uses the standard credential chain.
    # Kept out of repr so that no log of these options shows a secret.
    static_credentials: tuple[str, str] | None = field(default=None, repr=False)
    # Without static keys: a profile or a role to assume (None: the standard chain as it is).
    credentials: CredentialOptions | None = None
    # Certificates to trust for an https endpoint (the lean client; None: AWS_CA_BUNDLE or the SDK's bundle).
    ca_bundle: str | None = None


class AwsBackend:
    """Sends each operation through one shared aiobotocore client."""

    def __init__(
        self,
        client: Any,
        exit_stack: contextlib.AsyncExitStack,
        max_concurrency: int,
        answer_timeout_s: float | None = None,
    ) -> None:
        """`answer_timeout_s` bounds one call from sending to the whole answer (None: no bound)."""
        self._client = client
        self._exit_stack = exit_stack
        self._answer_timeout_s = answer_timeout_s
        # asyncio.Semaphore wakes waiters in FIFO order, so no caller starves when
        # callers outnumber pooled connections.
        self._slots = asyncio.Semaphore(max_concurrency)
        # The client's methods, looked up once each: aiobotocore builds them at runtime, untyped.
        self._methods: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {}
        # The role whose temporary credentials sign the calls, when one is configured.
        self.role: RoleCredentials | None = None

    @classmethod
    async def start(cls, options: AwsBackendOptions) -> AwsBackend:
        config = AioConfig(
            region_name=options.region,
            max_pool_connections=options.max_concurrency,
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": options.max_attempts},
        )
        exit_stack = contextlib.AsyncExitStack()
        try:
            session, role = await credentialed_session(
                options.static_credentials, options.credentials, exit_stack
            )
            client = await exit_stack.enter_async_context(
                session.create_client("dynamodb", endpoint_url=options.endpoint_url, config=config)
            )
        except BaseException:
            await exit_stack.aclose()
            raise
        # botocore's read timeout bounds each socket read, so an answer that trickles in a byte at a
        # time never trips it: bound the whole answer too, as the lean client's read timeout does
        # (every attempt the SDK may make: connect, then read).
        answer_timeout_s = options.max_attempts * (options.connect_timeout_s + options.read_timeout_s)
        backend = cls(client, exit_stack, options.max_concurrency, answer_timeout_s)
        backend.role = role
        return backend

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = self._methods.get(operation)
        if method is None:
            method = self._methods[operation] = getattr(self._client, xform_name(operation))
        async with self._slots:
            try:
                async with asyncio.timeout(self._answer_timeout_s):
                    return await method(**params)
            except TimeoutError:
                raise BackendUnavailableError(
                    "ReadTimeoutError",
                    "DynamoDB's answer did not complete within the read timeout",
                    ambiguous=True,
                ) from None
            except botocore_errors.ClientError as error:
                raise _backend_error(error.response) from None
            except botocore_errors.ParamValidationError as error:
                # botocore checks DynamoDB's documented constraints before sending; DynamoDB
                # would answer the same request with a ValidationException.
                raise BackendError("ValidationException", _one_line(str(error))) from None
            except botocore_errors.NoCredentialsError:
                raise BackendUnavailableError(
                    "NoCredentials", "the gateway found no AWS credentials"
                ) from None
            except AwsCredentialsError as error:
                # A role's credentials could not be refreshed in time (STS down, trust policy changed).
                raise BackendUnavailableError("AssumeRoleFailed", str(error)) from None
            except botocore_errors.NoRegionError:
                raise BackendUnavailableError(
                    "NoRegion", "the gateway has no AWS region configured"
                ) from None
            except _NOT_SENT as error:
                raise BackendUnavailableError(type(error).__name__, "DynamoDB could not be reached") from None
            except _AMBIGUOUS as error:
                raise BackendUnavailableError(
                    type(error).__name__, "DynamoDB did not answer", ambiguous=True
                ) from None

    async def close(self) -> None:
        await self._exit_stack.aclose()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _backend_error(response: Mapping[str, Any]) -> BackendError:
    error = response.get("Error", {})
    metadata = response.get("ResponseMetadata", {})
    return BackendError(
        code=error.get("Code", "Unknown"),
        message=error.get("Message", ""),
        http_status=metadata.get("HTTPStatusCode", 400),
        request_id=metadata.get("RequestId", ""),
        item=response.get("Item"),
        cancellation_reasons=list(response.get("CancellationReasons", ())),
    )
