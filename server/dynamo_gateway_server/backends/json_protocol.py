"""DynamoDB's JSON protocol spoken directly, signed with SigV4, over keep-alive HTTP/1.1 (the default client).

The gateway already holds each request in DynamoDB's own shape, so the SDK's
shape-driven serialisation, per-call handler chain and parsing are work it does
not need (they cost about 1 ms of CPU per call). This backend does only what the
wire requires: JSON with binary values as base64, a SigV4 signature with a cached
signing key, the CRC32 check, and DynamoDB's error body turned into BackendError.
Credentials still come from botocore's standard chain (refreshing ones included)
and the endpoint from its resolver, so configuration stays the SDK's. Selected by
`--backend-client lean` (the default; the flag keeps its first name); the differential
test proves it answers as the aiobotocore backend does. Must not import gRPC.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import http.client
import ssl
import time
import zlib
from typing import Any
from urllib.parse import urlsplit

import orjson
from botocore.httpsession import where

from ..security.credentials import credentialed_session
from .aws import AwsBackendOptions
from .base import BackendError, BackendUnavailableError
from .http1 import ConnectFailed, ConnectionBroken, Http1Pool, ReadTimedOut

_TARGET_PREFIX = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"
_SERVICE = "dynamodb"


def encode_default(value: Any) -> str:
    # Bytes only ever appear as binary attribute values (B, BS): base64 on the wire.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be sent to DynamoDB")


def decode_blobs(value: Any) -> Any:
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
            decode_blobs(child)
    elif isinstance(value, list):
        for child in value:
            decode_blobs(child)
    return value


def host_header(url: str) -> str:
    """The Host header an HTTP client sends for url (no port when it is the scheme's default)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class _Signer:
    """SigV4 for DynamoDB's POST requests.

    The signing key is cached per day and secret, and everything in the canonical
    request but the body's hash per second, target and token: per call only the two
    hashes and one HMAC are left.
    """

    def __init__(self, region: str, host: str, path: str = "/") -> None:
        self._region = region
        self._host = host
        self._path = path
        self._key_cache: tuple[str, str, bytes] | None = None
        self._second = -1
        self._amz_date = ""
        # (target, token) -> (canonical request up to the body's hash, signed header names); this second's only.
        self._prefixes: dict[tuple[str, str | None], tuple[str, str]] = {}

    def _signing_key(self, day: str, secret: str) -> bytes:
        if self._key_cache is None or self._key_cache[:2] != (day, secret):
            key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (self._region, _SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key_cache = (day, secret, key)
        return self._key_cache[2]

    def _date(self, now: datetime.datetime | None) -> str:
        if now is not None:
            self._second = -1  # a given instant (tests): nothing cached for it
            self._prefixes.clear()
            return now.strftime("%Y%m%dT%H%M%SZ")
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._prefixes.clear()
        return self._amz_date

    def headers(
        self,
        target: str,
        body: bytes,
        access_key: str,
        secret: str,
        token: str | None,
        now: datetime.datetime | None = None,
    ) -> dict[str, str]:
        amz_date = self._date(now)
        headers = {
            "content-type": _CONTENT_TYPE,
            "host": self._host,
            "x-amz-date": amz_date,
            "x-amz-target": target,
        }
        if token:
            headers["x-amz-security-token"] = token
        prefix = self._prefixes.get((target, token))
        if prefix is None:
            names = sorted(headers)
            signed = ";".join(names)
            canonical = "\n".join(
                ["POST", self._path, "", *(f"{name}:{headers[name]}" for name in names), "", signed, ""]
            )
            prefix = self._prefixes[(target, token)] = (canonical, signed)
        canonical, signed = prefix
        day = amz_date[:8]
        scope = f"{day}/{self._region}/{_SERVICE}/aws4_request"
        canonical_hash = hashlib.sha256((canonical + hashlib.sha256(body).hexdigest()).encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{canonical_hash}"
        signature = hmac.digest(self._signing_key(day, secret), to_sign.encode(), "sha256").hex()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers


class JsonProtocolBackend:
    """Sends each operation as one signed POST on a shared keep-alive connection pool."""

    def __init__(self, endpoint_url: str, region: str, credentials: Any, options: AwsBackendOptions) -> None:
        self.endpoint_url = endpoint_url.rstrip("/") + "/"
        self._credentials = credentials
        path = urlsplit(self.endpoint_url).path or "/"
        self._signer = _Signer(region, host_header(self.endpoint_url), path)
        self._request_line = f"POST {path} HTTP/1.1\r\n".encode()
        # Sized to the concurrency, with a FIFO gate in front: no caller starves.
        self._pool = Http1Pool(
            self.endpoint_url,
            options.max_concurrency,
            options.connect_timeout_s,
            options.read_timeout_s,
            ssl.create_default_context(cafile=options.ca_bundle or where())
            if self.endpoint_url.startswith("https:")
            else None,
        )
        self._exit_stack = contextlib.AsyncExitStack()

    @classmethod
    async def start(cls, options: AwsBackendOptions) -> JsonProtocolBackend:
        exit_stack = contextlib.AsyncExitStack()
        try:
            # The same keys, chain, profile or role as the aiobotocore backend, proven at startup.
            session, _ = await credentialed_session(
                options.static_credentials, options.credentials, exit_stack
            )
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
        if options.ca_bundle is None and (bundle := session.get_config_variable("ca_bundle")):
            options = dataclasses.replace(options, ca_bundle=bundle)  # AWS_CA_BUNDLE, as the SDK reads it
        backend = cls(endpoint, options.region, credentials, options)
        backend._exit_stack = exit_stack  # the role's STS client lives as long as the backend
        return backend

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            body = orjson.dumps(params, default=encode_default)
        except orjson.JSONEncodeError as error:
            # Text that is not valid Unicode (a lone surrogate): DynamoDB could not read it either.
            raise BackendError(
                code="ValidationException", message=f"the request cannot be sent as JSON: {error}"
            ) from None
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(
            _TARGET_PREFIX + operation, body, frozen.access_key, frozen.secret_key, frozen.token
        )
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = b"%b%bcontent-length: %d\r\n\r\n%b" % (self._request_line, head.encode(), len(body), body)
        try:
            response = await self._pool.send(request)
        except ConnectFailed:
            raise BackendUnavailableError(
                "EndpointConnectionError", "DynamoDB could not be reached"
            ) from None
        except ReadTimedOut:
            raise BackendUnavailableError(
                "ReadTimeoutError", "DynamoDB did not answer", ambiguous=True
            ) from None
        except ConnectionBroken:
            raise BackendUnavailableError(
                "ConnectionClosedError", "DynamoDB did not answer", ambiguous=True
            ) from None
        payload = response.body
        crc = response.headers.get("x-amz-crc32")
        if crc is not None and crc != str(zlib.crc32(payload) & 0xFFFFFFFF):
            # A damaged answer: the request may have been applied.
            raise BackendUnavailableError("ChecksumMismatch", "DynamoDB's answer was damaged", ambiguous=True)
        try:
            document = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            document = {}
        if not isinstance(document, dict):
            document = {}  # valid JSON, but not an answer of DynamoDB's (a proxy's)
        if response.status >= 300:
            raise _error(document, response.status, response.headers.get("x-amzn-requestid", ""))
        # Binary values come as {"B": ...} or {"BS": [...]}: without those bytes there is nothing to decode.
        return decode_blobs(document) if b'"B' in payload else document

    async def close(self) -> None:
        await self._pool.close()
        await self._exit_stack.aclose()


def _error(document: dict[str, Any], status: int, request_id: str) -> BackendError:
    """DynamoDB's error body as botocore reads it, so both clients name every error alike.

    The code is `__type` without its namespace ("com.amazonaws...#ValidationException"), or the
    HTTP status when the body has none (a proxy's or emulator's HTML 500 gives code "500" and
    the status's reason phrase as message, as botocore does)."""
    raw_type = document.get("__type")
    code = str(raw_type).split(":", 1)[0].rpartition("#")[2] if raw_type else str(status)
    message = document.get("message", document.get("Message"))
    if message is None:
        message = http.client.responses.get(status, "") if status >= 500 and not document else ""
    item = document.get("Item")
    reasons = document.get("CancellationReasons") or []
    return BackendError(
        code=code,
        message=str(message),
        http_status=status,
        request_id=request_id,
        item=decode_blobs(item) if item is not None else None,
        cancellation_reasons=[decode_blobs(r) for r in reasons],
    )
