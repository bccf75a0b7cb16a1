"""The canary test for the security layer's secrets: none reaches a log line, a metric, a span or an error.

Canaries are planted in every secret the gateway holds or sees: callers' static
tokens and JWTs (valid and not), the TLS private key, the role's external id, the
web identity token, the standard chain's keys, and the temporary credentials STS
hands out (at startup and at a refresh). Logs run at TRACE, where botocore logs
signed requests and STS's response bodies.
"""

from __future__ import annotations

import os
import re
import uuid

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.observability.telemetry import Telemetry

from .conftest import (
    AUDIENCE,
    ISSUER,
    Clock,
    bearer,
    create_table,
    key,
    put,
    role_gateway,
    write_atomically,
    write_tokens,
)


@pytest.mark.parametrize("role", ["assume-role", "web-identity"])
async def test_no_secret_reaches_logs_metrics_spans_or_errors(
    role: str, sts_proxy, aws_environment, admin, pki, jwt_issuer, capture_logs, tmp_path
) -> None:
    canary = f"canary{uuid.uuid4().hex}"
    aws_environment(f"AKIA{canary[:16].upper()}", f"{canary}-base-secret")
    logs = capture_logs("TRACE", environ=dict(os.environ))
    table = await create_table(admin, "open")
    static_token = f"dgw_{canary}_static"
    tokens = write_tokens(tmp_path / "tokens.yaml", {"writer": static_token})
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, "rules:\n  - {callers: ['*'], tables: ['open-*'], access: read-write}\n")
    token_file = tmp_path / "web-identity-token"
    token_file.write_text(f"eyJ.{canary}-web-identity.sig")
    role_settings = (
        {"aws_role_external_id": f"{canary}-external-id"}
        if role == "assume-role"
        else {"aws_web_identity_token_file": str(token_file)}
    )
    settings = Settings(
        port=0,
        backend="aws",
        grace_period_s=0,
        endpoint_url=sts_proxy.endpoint_url,
        aws_sts_endpoint_url=sts_proxy.endpoint_url,
        aws_role_arn="arn:aws:iam::123456789012:role/gateway",
        aws_role_duration_s=900,
        tls_cert_file=str(pki.cert_file),
        tls_key_file=str(pki.key_file),
        auth_tokens_file=str(tokens),
        jwt_jwks_file=str(jwt_issuer.jwks_file),
        jwt_issuer=ISSUER,
        jwt_audiences=AUDIENCE,
        policy_file=str(policy),
        **role_settings,
    )
    clock = sts_proxy.clock = Clock()
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(settings, span_exporter=exporter)
    gateway = await role_gateway(settings, clock, "canary", telemetry)
    failures: list[grpc.aio.AioRpcError] = []
    good_jwt = jwt_issuer.token(sub=f"system:serviceaccount:shop:{canary[:8]}")
    try:
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{gateway.port}",
            pki.channel_credentials(),
            options=(("grpc.ssl_target_name_override", "gateway.test"),),
        )
        stub = service_pb2_grpc.DynamoDBServiceStub(channel)
        await stub.PutItem(put(table, "a"), metadata=bearer(static_token))
        await stub.GetItem(
            service_pb2.GetItemRequest(table_name=table, key=key("a")), metadata=bearer(good_jwt)
        )
        clock.advance(700)  # into the refresh window: a second set of temporary credentials
        await stub.PutItem(put(table, "b"), metadata=bearer(static_token))
        for metadata, request in (
            (bearer(f"dgw_{canary}_wrong"), service_pb2.GetItemRequest(table_name=table, key=key("a"))),
            (
                bearer(jwt_issuer.token(expires_in_s=-60)),
                service_pb2.GetItemRequest(table_name=table, key=key("a")),
            ),
            (bearer(f"{good_jwt}x"), service_pb2.GetItemRequest(table_name=table, key=key("a"))),
            (bearer(static_token), service_pb2.GetItemRequest(table_name="closed-table", key=key("a"))),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetItem(request, metadata=metadata)
            failures.append(caught.value)
        await channel.close()
    finally:
        await gateway.stop(0)

    issued = [
        secret
        for seen in sts_proxy.actions("AssumeRole")
        for secret in re.findall(r"<(?:SecretAccessKey|SessionToken)>([^<]+)<", seen.response.decode())
    ]
    assert len(issued) == 4, "two sets of temporary credentials were handed out"
    key_body = "".join(line for line in pki.server.key_pem.decode().splitlines() if "-----" not in line)
    secrets = {
        "canary": canary,
        "static token": static_token,
        "JWT": good_jwt,
        "JWT signature": good_jwt.rsplit(".", 1)[1],
        "TLS key": key_body[20:60],
        **{f"STS secret {index}": secret for index, secret in enumerate(issued)},
    }
    log_text = logs.text()
    places = {
        "logs": log_text,
        "metrics": generate_latest(telemetry.metrics.registry).decode(),
        "spans": "\n".join(span.to_json() for span in exporter.get_finished_spans()),
        "errors": "\n".join(
            f"{e.details()} {e.trailing_metadata()} {e.debug_error_string()}" for e in failures
        ),
    }
    # The dangerous places were exercised: botocore logged STS's answer and the signed DynamoDB calls.
    assert "<SecretAccessKey>***</SecretAccessKey>" in log_text
    assert "X-Amz-Security-Token" in log_text or "x-amz-security-token" in log_text
    assert [failure.code() for failure in failures] == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [
        grpc.StatusCode.PERMISSION_DENIED
    ]
    for name, text in places.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} leaked into {name}"
