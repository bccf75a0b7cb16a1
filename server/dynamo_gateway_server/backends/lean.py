"""The lean backend: DynamoDB's JSON protocol spoken directly, signed with SigV4, over keep-alive aiohttp.

The gateway already holds each request in DynamoDB's own shape, so the SDK's
shape-driven serialisation, per-call handler chain and parsing are work it does
not need (they cost about 1 ms of CPU per call). This backend does only what the
wire requires: JSON with binary values as base64, a SigV4 signature with a cached
signing key, the CRC32 check, and DynamoDB's error body turned into BackendError.
Credentials still come from botocore's standard chain (refreshing ones included)
and the endpoint from its resolver, so configuration stays the SDK's. Select it
with `--backend-client lean`; the differential test proves it answers as the
aiobotocore backend does. Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import zlib
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.session import get_session

from ..security.credentials import CredentialOptions, prepare_credentials
from .aws import AwsBackendOptions
from .base import BackendError, BackendUnavailableError

_TARGET_PREFIX = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"
_SERVICE = "dynamodb"


def _encode_default(value: Any) -> str:
    # Bytes only ever appear as binary attribute values (B, BS): base64 on the wire.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be sent to DynamoDB")


def _decode_blobs(value: Any) -> Any:
    """Turns base64 binary attribute values back into bytes, in place.

    A dict whose only key is "B" with a string value is a binary attribute value: an
    attribute named "B" inside a map or item has a dict (an attribute value) as its value.
    """
    if isinstance(value, dict):
        if len(value) == 1:
            if isinstance(blob := value.get("B"), str):
                value["B"] = base64.b64decode(blob)
                return value
            if isinstance(blobs := value.get("BS"), list) and all(isinstance(b, str) for b in blobs):
                value["BS"] = [base64.b64decode(b) for b in blobs]
                return value
        for child in value.values():
            _decode_blobs(child)
    elif isinstance(value, list):
        for child in value:
            _decode_blobs(child)
    return value


def host_header(url: str) -> str:
    """The Host header an HTTP client sends for url (no port when it is the scheme's default)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class _Signer:
    """SigV4 for DynamoDB's POST requests; the signing key is cached per day and secret."""

    def __init__(self, region: str, host: str) -> None:
        self._region = region
        self._host = host
        self._key_cache: tuple[str, str, bytes] | None = None

    def _signing_key(self, day: str, secret: str) -> bytes:
        if self._key_cache is None or self._key_cache[:2] != (day, secret):
            key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (self._region, _SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key_cache = (day, secret, key)
        return self._key_cache[2]

    def headers(
        self,
        target: str,
        body: bytes,
        access_key: str,
        secret: str,
        token: str | None,
        now: datetime.datetime | None = None,
    ) -> dict[str, str]:
        now = now or datetime.datetime.now(datetime.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        headers = {
            "content-type": _CONTENT_TYPE,
            "host": self._host,
            "x-amz-date": amz_date,
            "x-amz-target": target,
        }
        if token:
            headers["x-amz-security-token"] = token
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                *(f"{name}:{headers[name]}" for name in sorted(headers)),
                "",
                signed,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self._region}/{_SERVICE}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day, secret), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers


class LeanBackend:
    """Sends each operation as one signed POST on a shared keep-alive connection pool."""

    def __init__(self, endpoint_url: str, region: str, credentials: Any, options: AwsBackendOptions) -> None:
        self.endpoint_url = endpoint_url.rstrip("/") + "/"
        self._credentials = credentials
        self._signer = _Signer(region, host_header(self.endpoint_url))
        # The connector's own limit queues waiters FIFO too; it sizes the pool to the concurrency.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=options.max_concurrency, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(
                sock_connect=options.connect_timeout_s, sock_read=options.read_timeout_s
            ),
            skip_auto_headers=("User-Agent", "Content-Type", "Accept-Encoding"),
        )
        self._slots = asyncio.Semaphore(options.max_concurrency)
        self._exit_stack = contextlib.AsyncExitStack()

    @classmethod
    async def start(cls, options: AwsBackendOptions) -> LeanBackend:
        session = get_session()
        exit_stack = contextlib.AsyncExitStack()
        try:
            if options.static_credentials:
                key_id, secret = options.static_credentials
                session.set_credentials(key_id, secret)
            else:
                # The same chain, profile or role as the aiobotocore backend, proven at startup.
                await prepare_credentials(session, options.credentials or CredentialOptions(), exit_stack)
            credentials = await session.get_credentials()
        except BaseException:
            await exit_stack.aclose()
            raise
        # The SDK's resolver decides the endpoint, as it would for the aiobotocore backend.
        async with session.create_client(
            "dynamodb",
            region_name=options.region,
            endpoint_url=options.endpoint_url,
            aws_access_key_id="resolver",
            aws_secret_access_key="resolver",
        ) as client:
            endpoint = client.meta.endpoint_url
        backend = cls(endpoint, options.region, credentials, options)
        backend._exit_stack = exit_stack  # the role's STS client lives as long as the backend
        return backend

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params, default=_encode_default, separators=(",", ":")).encode()
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(
            _TARGET_PREFIX + operation, body, frozen.access_key, frozen.secret_key, frozen.token
        )
        async with self._slots:
            try:
                async with self._session.post(self.endpoint_url, data=body, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
                    crc = response.headers.get("x-amz-crc32")
                    request_id = response.headers.get("x-amzn-RequestId", "")
            except aiohttp.ClientConnectorError:
                raise BackendUnavailableError(
                    "EndpointConnectionError", "DynamoDB could not be reached"
                ) from None
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise BackendUnavailableError(
                    "ReadTimeoutError", "DynamoDB did not answer", ambiguous=True
                ) from None
            except aiohttp.ClientError:
                raise BackendUnavailableError(
                    "ConnectionClosedError", "DynamoDB did not answer", ambiguous=True
                ) from None
        if crc is not None and int(crc) != zlib.crc32(payload) & 0xFFFFFFFF:
            # A damaged answer: the request may have been applied.
            raise BackendUnavailableError("ChecksumMismatch", "DynamoDB's answer was damaged", ambiguous=True)
        try:
            document = json.loads(payload) if payload else {}
        except ValueError:
            document = {}
        if status >= 300:
            raise _error(document, status, request_id)
        return _decode_blobs(document)

    async def close(self) -> None:
        await self._session.close()
        await self._exit_stack.aclose()


def _error(document: dict[str, Any], status: int, request_id: str) -> BackendError:
    code = str(document.get("__type", "")).rpartition("#")[2] or (
        "InternalServerError" if status >= 500 else "Unknown"
    )
    item = document.get("Item")
    reasons = document.get("CancellationReasons") or []
    return BackendError(
        code=code,
        message=str(document.get("message", document.get("Message", ""))),
        http_status=status,
        request_id=request_id,
        item=_decode_blobs(item) if item is not None else None,
        cancellation_reasons=[_decode_blobs(r) for r in reasons],
    )
