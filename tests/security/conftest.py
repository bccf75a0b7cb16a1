"""Security fixtures: real certificates, tokens and JWTs made in the test, real gateways on loopback.

Gateways here are the real Gateway (interceptors, TLS, policy, limits) in front of
the real aws backend talking to moto's server mode (dynalite where DynamoDB's
item size rule matters); nothing is faked but the clock of temporary AWS
credentials. Certificates come from `cryptography`, JWT keys from joserfc.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import itertools
import json
import os
import pathlib
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp import web
from cryptography import x509
from google.rpc import error_details_pb2, status_pb2
from joserfc import jwt
from joserfc.jwk import ECKey

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc, value_pb2
from dynamo_gateway_server import request_shape
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.backends.aws import AwsBackend
from dynamo_gateway_server.backends.memory import MotoServerProcess
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.observability.telemetry import Telemetry
from dynamo_gateway_server.security.auth import token_digest
from dynamo_gateway_server.security.credentials import credential_options
from dynamo_gateway_server.tables import TableSpec, create_table_params
from tests.support.backends import aws_backend_for, no_sleep
from tests.support.certs import SERVER_NAME, Issued, issue, server_cert
from tests.support.emulators import FaultProxy
from tests.support.logs import capture_logs  # noqa: F401  (a fixture)

ISSUER = "https://issuer.test"
AUDIENCE = "dynamo-gateway"


# ---------------------------------------------------------------- certificates


def write_atomically(path: pathlib.Path, data: bytes | str) -> None:
    """Replaces a file the way Kubernetes updates mounted secrets: a new file renamed over the old one."""
    staging = path.with_name(f".{path.name}.new")
    staging.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(staging, path)


@dataclass
class Pki:
    directory: pathlib.Path
    ca: Issued = field(default_factory=lambda: issue("test-ca", ca=True))

    def __post_init__(self) -> None:
        self.server = server_cert(self.ca)
        self.cert_file = self.directory / "server.crt"
        self.key_file = self.directory / "server.key"
        self.ca_file = self.directory / "ca.crt"
        write_atomically(self.cert_file, self.server.cert_pem)
        write_atomically(self.key_file, self.server.key_pem)
        write_atomically(self.ca_file, self.ca.cert_pem)

    def client(self, uri: str = "spiffe://test/ns/shop/sa/orders", issuer: Issued | None = None) -> Issued:
        return issue("orders-client", issuer or self.ca, sans=(x509.UniformResourceIdentifier(uri),))

    def channel_credentials(
        self, client: Issued | None = None, root: bytes | None = None
    ) -> grpc.ChannelCredentials:
        if client is None:
            return grpc.ssl_channel_credentials(root or self.ca.cert_pem)
        return grpc.ssl_channel_credentials(root or self.ca.cert_pem, client.key_pem, client.cert_pem)


@pytest.fixture
def pki(tmp_path: pathlib.Path) -> Pki:
    return Pki(tmp_path)


# ---------------------------------------------------------------- tokens and JWTs


def write_tokens(path: pathlib.Path, tokens: dict[str, str]) -> pathlib.Path:
    """A tokens file as an operator writes it: names and SHA-256 digests, never the tokens."""
    lines = ["tokens:"] + [
        f"  - name: {name}\n    sha256: {token_digest(token)}" for name, token in tokens.items()
    ]
    write_atomically(path, "\n".join(lines) + "\n")
    return path


@dataclass
class JwtIssuer:
    """Signs JWTs like a cluster's service-account issuer; publishes its public keys as a JWKS file."""

    jwks_file: pathlib.Path
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", parameters={"kid": "k1"}))

    def __post_init__(self) -> None:
        self.publish()

    def publish(self, *keys: ECKey) -> None:
        published = [key.as_dict(private=False) for key in (keys or (self.key,))]
        write_atomically(self.jwks_file, json.dumps({"keys": published}))

    def token(
        self,
        sub: str = "system:serviceaccount:shop:orders",
        aud: str = AUDIENCE,
        iss: str = ISSUER,
        expires_in_s: int = 600,
        key: ECKey | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        signer = key or self.key
        payload = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "exp": now + expires_in_s, **claims}
        return jwt.encode({"alg": "ES256", "kid": signer.kid}, payload, signer)


@pytest.fixture
def jwt_issuer(tmp_path: pathlib.Path) -> JwtIssuer:
    return JwtIssuer(tmp_path / "jwks.json")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


# ---------------------------------------------------------------- emulators and data


# The security suite's own keys and a smaller pool; callers' overrides still win.
aws_backend = functools.partial(
    aws_backend_for, max_concurrency=16, static_credentials=("security-test", "security-test")
)


@pytest.fixture(scope="session")
async def admin(moto: MotoServerProcess) -> AsyncIterator[AwsBackend]:
    """Straight to moto, outside any gateway: creates tables and reads what is really stored."""
    backend = await aws_backend(moto.endpoint_url)
    yield backend
    await backend.close()


_numbers = itertools.count()


async def create_table(backend: Any, prefix: str, sort_key: bool = True) -> str:
    name = f"{prefix}-{next(_numbers)}"
    attributes = {"pk": "S", "sk": "S", "gsi1pk": "S"} if sort_key else {"pk": "S"}
    spec = TableSpec(
        name=name, attributes=attributes, partition_key="pk", sort_key="sk" if sort_key else None
    )
    params = create_table_params(spec)
    if sort_key:
        params["GlobalSecondaryIndexes"] = [
            {
                "IndexName": "gsi1",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    await backend.call("CreateTable", params)
    return name


async def stored(backend: Any, table: str, pk: str, sk: str = "0") -> dict[str, Any] | None:
    response = await backend.call("GetItem", {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}})
    return response.get("Item")


# ---------------------------------------------------------------- gateways


class Recorder:
    """The backend seam with every operation recorded: proves what never reached DynamoDB."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.operations: list[tuple[str, tuple[str, ...]]] = []

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.operations.append((operation, request_shape.tables(operation, params)))
        return await self.inner.call(operation, params)

    def touched(self, table: str) -> list[str]:
        return [operation for operation, tables in self.operations if table in tables]

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Served:
    gateway: Gateway
    recorder: Recorder
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.gateway.port

    def channel(
        self, credentials: grpc.ChannelCredentials | None = None, options: tuple[tuple[str, Any], ...] = ()
    ) -> grpc.aio.Channel:
        target = f"127.0.0.1:{self.port}"
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=options)
        else:
            channel = grpc.aio.secure_channel(
                target, credentials, options=(("grpc.ssl_target_name_override", SERVER_NAME), *options)
            )
        self.channels.append(channel)
        return channel

    def stub(
        self, credentials: grpc.ChannelCredentials | None = None
    ) -> service_pb2_grpc.DynamoDBServiceStub:
        return service_pb2_grpc.DynamoDBServiceStub(self.channel(credentials))


@pytest.fixture
async def serve(moto: MotoServerProcess) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Starts gateways in front of moto (or another endpoint), with the given settings; stops them after."""
    started: list[Served] = []

    async def start(
        endpoint_url: str | None = None, wrap: Callable[[Any], Any] | None = None, **settings: Any
    ) -> Served:
        endpoint = endpoint_url or moto.endpoint_url
        config = Settings(
            **{"port": 0, "backend": "aws", "grace_period_s": 0, "endpoint_url": endpoint, **settings}
        )
        backend = await aws_backend(endpoint)
        recorders: list[Recorder] = []

        def record(retrying: Any) -> Any:
            recorders.append(Recorder(retrying))
            return wrap(recorders[-1]) if wrap else recorders[-1]

        try:
            gateway = Gateway(
                config, backend, endpoint=endpoint, clocks=Clocks(sleep=no_sleep), around_retries=record
            )
            await gateway.start()
        except BaseException:
            await backend.close()
            raise
        served = Served(gateway, recorders[0])
        started.append(served)
        return served

    yield start
    for served in started:
        for channel in served.channels:
            await channel.close()
        await served.gateway.stop(0)


# ---------------------------------------------------------------- errors and requests


def details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The google.rpc.Status details of an error, decoded: ErrorInfo (exactly one), BadRequest, RetryInfo."""
    found: dict[str, Any] = {"ErrorInfo": []}
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            for kind in (
                error_details_pb2.ErrorInfo,
                error_details_pb2.BadRequest,
                error_details_pb2.RetryInfo,
            ):
                if detail.Is(kind.DESCRIPTOR):
                    message = kind()
                    detail.Unpack(message)
                    if kind is error_details_pb2.ErrorInfo:
                        found["ErrorInfo"].append(message)
                    else:
                        found[kind.DESCRIPTOR.name] = message
    assert len(found["ErrorInfo"]) == 1, "exactly one ErrorInfo per status"
    found["info"] = found["ErrorInfo"][0]
    return found


def s(text: str) -> dict[str, str]:
    """A string AttributeValue as a proto3 dict (the field is called `s`)."""
    return {"s": text}


def put(table: str, pk: str, sk: str = "0", **attributes: str) -> service_pb2.PutItemRequest:
    item = {"pk": s(pk), "sk": s(sk), **{name: s(value) for name, value in attributes.items()}}
    return service_pb2.PutItemRequest(table_name=table, item=item)


def key(pk: str, sk: str = "0") -> dict[str, dict[str, str]]:
    return {"pk": s(pk), "sk": s(sk)}


def fill(target: Any, attributes: dict[str, dict[str, Any]]) -> None:
    """Sets a proto map<string, AttributeValue> from proto3 dicts (maps of messages take no update())."""
    for name, value in attributes.items():
        target[name].CopyFrom(value_pb2.AttributeValue(**value))


# ---------------------------------------------------------------- AWS: moto's STS behind a recording proxy


@dataclass
class Seen:
    action: str
    access_key: str
    security_token: str
    body: dict[str, str]
    response: bytes


class RecordingProxy(FaultProxy):
    """A FaultProxy that records each request's action, signing key and body, and can fail STS calls."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.seen: list[Seen] = []
        self.sts_error: str | None = None
        # When set, STS answers as if it lived on this clock too (see _shift_expiration).
        self.clock: Clock | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form = dict(urllib.parse.parse_qsl(body.decode("latin-1"))) if b"Action=" in body else {}
        action = form.get("Action") or request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        authorization = request.headers.get("Authorization", "")
        access_key = (
            authorization.split("Credential=", 1)[1].split("/", 1)[0]
            if "Credential=" in authorization
            else ""
        )
        if self.sts_error and action.startswith("AssumeRole"):
            response: web.StreamResponse = web.Response(
                status=403,
                content_type="text/xml",
                text=(
                    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    f"<Code>{self.sts_error}</Code><Message>refused by the test</Message></Error>"
                    "<RequestId>test</RequestId></ErrorResponse>"
                ),
            )
        else:
            response = await super()._handle(request)
            if (
                self.clock is not None
                and action.startswith("AssumeRole")
                and isinstance(response, web.Response)
            ):
                response = self._shift_expiration(response, self.clock.offset)
        payload = (
            response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        )
        self.seen.append(
            Seen(action, access_key, request.headers.get("X-Amz-Security-Token", ""), form, payload)
        )
        return response

    @staticmethod
    def _shift_expiration(response: web.Response, offset: datetime.timedelta) -> web.Response:
        """moto dates expirations by the real clock; the gateway's credentials run on the test's clock."""
        assert isinstance(response.body, bytes)

        def shifted(match: re.Match[str]) -> str:
            moment = datetime.datetime.fromisoformat(match.group(1)) + offset
            return f"<Expiration>{moment.isoformat().replace('+00:00', 'Z')}</Expiration>"

        body = re.sub(r"<Expiration>([^<]+)</Expiration>", shifted, response.body.decode())
        return web.Response(body=body.encode(), status=response.status, content_type="text/xml")

    def actions(self, prefix: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.action.startswith(prefix)]


@pytest.fixture
async def sts_proxy(moto: MotoServerProcess) -> AsyncIterator[RecordingProxy]:
    proxy = RecordingProxy(moto.endpoint_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Callable[..., None]:
    """An AWS environment with nothing but what the test gives: no profile files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    # Never reach for a metadata endpoint: the tests have no network.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def set_keys(access_key: str | None = None, secret_key: str | None = None) -> None:
        if access_key:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
        if secret_key:
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)

    return set_keys


class Clock:
    """The time temporary credentials are judged by; moves only when a test says so."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += datetime.timedelta(seconds=seconds)


async def role_gateway(
    settings: Settings, clock: Clock, endpoint: str = "sts-test", telemetry: Telemetry | None = None
) -> Gateway:
    """The gateway start_gateway would build, with the credentials' clock in the test's hands."""
    options = credential_options(settings)
    assert options.role is not None
    backend = await aws_backend_for(
        settings.endpoint_url,
        region=settings.region,
        max_concurrency=4,
        static_credentials=None,  # the role's temporary credentials sign, not fixed keys
        credentials=dataclasses.replace(options, role=dataclasses.replace(options.role, clock=clock)),
    )
    gateway = Gateway(
        settings, backend, telemetry=telemetry, endpoint=endpoint, clocks=Clocks(sleep=no_sleep)
    )
    await gateway.start()
    return gateway
