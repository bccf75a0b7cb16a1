"""The gateway's own AWS credentials, against moto's STS: AssumeRole, web identity, refresh, failing fast.

A recording proxy sits in front of moto, so the tests see which key signed each
DynamoDB call and what each STS call carried. Credentials last STS's minimum of
900 s; the refresh is reached by moving the credentials' clock, not by waiting.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest

from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.app import Gateway, start_gateway
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.security.credentials import AwsCredentialsError

from .conftest import Clock, RecordingProxy, create_table, details, key, put, role_gateway

ROLE = "arn:aws:iam::123456789012:role/gateway"
BASE_KEY, BASE_SECRET = "AKIABASEKEYFORTESTS1", "base-secret-for-the-standard-chain"


def _issued(seen: Any) -> tuple[str, str]:
    """The access key id and session token an STS response handed out."""
    body = seen.response.decode()
    access_key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", body)
    token = re.search(r"<SessionToken>([^<]+)</SessionToken>", body)
    assert access_key and token, body[:200]
    return access_key.group(1), token.group(1)


def _settings(proxy: RecordingProxy, **overrides: Any) -> Settings:
    return Settings(
        **{
            "port": 0,
            "backend": "aws",
            "grace_period_s": 0,
            "endpoint_url": proxy.endpoint_url,
            "aws_sts_endpoint_url": proxy.endpoint_url,
            "aws_role_arn": ROLE,
            "aws_role_duration_s": 900,
            "aws_credentials_refresh_s": 300,
            **overrides,
        }
    )


async def _put(gateway: Gateway, table: str, pk: str) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        from dynamo_gateway.v1 import service_pb2_grpc

        await service_pb2_grpc.DynamoDBServiceStub(channel).PutItem(put(table, pk))


async def test_assume_role_at_startup_then_refreshed_before_expiry(sts_proxy, aws_environment, admin) -> None:
    aws_environment(BASE_KEY, BASE_SECRET)
    table = await create_table(admin, "role")
    clock = sts_proxy.clock = Clock()
    settings = _settings(
        sts_proxy, aws_role_session_name="gateway-test", aws_role_external_id="external-id-42"
    )
    gateway = await role_gateway(settings, clock)
    try:
        # Assumed at startup, signed with the standard chain's key, with every configured parameter.
        (assumed,) = sts_proxy.actions("AssumeRole")
        assert assumed.access_key == BASE_KEY
        assert {
            k: assumed.body[k] for k in ("RoleArn", "RoleSessionName", "ExternalId", "DurationSeconds")
        } == {
            "RoleArn": ROLE,
            "RoleSessionName": "gateway-test",
            "ExternalId": "external-id-42",
            "DurationSeconds": "900",
        }
        first_key, first_token = _issued(assumed)

        await _put(gateway, table, "a")
        signed = sts_proxy.actions("PutItem")[-1]
        assert (signed.access_key, signed.security_token) == (first_key, first_token)

        clock.advance(599)  # 301 s left: not yet inside the 300 s refresh window
        await _put(gateway, table, "b")
        assert len(sts_proxy.actions("AssumeRole")) == 1

        clock.advance(2)  # 299 s left: the next call refreshes first
        await _put(gateway, table, "c")
        assert len(sts_proxy.actions("AssumeRole")) == 2
        second_key, _ = _issued(sts_proxy.actions("AssumeRole")[1])
        assert second_key != first_key
        assert sts_proxy.actions("PutItem")[-1].access_key == second_key
        assert gateway.dynamodb.role.fetches == 2  # type: ignore[attr-defined]  # the seam type has no role
    finally:
        await gateway.stop(0)


async def test_web_identity_rereads_its_token_file_at_every_refresh(
    sts_proxy, aws_environment, admin, tmp_path
) -> None:
    aws_environment()  # no keys at all: AssumeRoleWithWebIdentity needs none
    table = await create_table(admin, "irsa")
    token_file = tmp_path / "token"
    token_file.write_text("eyJ.first-projected-token.sig\n")
    clock = sts_proxy.clock = Clock()
    gateway = await role_gateway(_settings(sts_proxy, aws_web_identity_token_file=str(token_file)), clock)
    try:
        (first,) = sts_proxy.actions("AssumeRoleWithWebIdentity")
        assert first.access_key == ""  # not signed: the token is the credential
        assert first.body["WebIdentityToken"] == "eyJ.first-projected-token.sig"
        await _put(gateway, table, "a")
        assert sts_proxy.actions("PutItem")[-1].access_key == _issued(first)[0]

        token_file.write_text("eyJ.rotated-by-the-kubelet.sig\n")
        clock.advance(700)
        await _put(gateway, table, "b")
        second = sts_proxy.actions("AssumeRoleWithWebIdentity")[1]
        assert second.body["WebIdentityToken"] == "eyJ.rotated-by-the-kubelet.sig"
        assert sts_proxy.actions("PutItem")[-1].access_key == _issued(second)[0]
    finally:
        await gateway.stop(0)


async def test_start_gateway_wires_the_role_settings(sts_proxy, aws_environment, admin) -> None:
    aws_environment(BASE_KEY, BASE_SECRET)
    table = await create_table(admin, "wired")
    gateway = await start_gateway(_settings(sts_proxy))
    try:
        (assumed,) = sts_proxy.actions("AssumeRole")
        await _put(gateway, table, "a")
        assert sts_proxy.actions("PutItem")[-1].access_key == _issued(assumed)[0]
    finally:
        await gateway.stop(0)


async def test_no_credentials_stop_the_aws_backend_at_startup(sts_proxy, aws_environment) -> None:
    aws_environment()
    settings = Settings(port=0, backend="aws", endpoint_url=sts_proxy.endpoint_url)
    with pytest.raises(AwsCredentialsError, match="found no AWS credentials: set AWS_ACCESS_KEY_ID"):
        await start_gateway(settings)
    with pytest.raises(AwsCredentialsError, match=r"AssumeRole of .* needs credentials to call STS with"):
        await start_gateway(_settings(sts_proxy))
    with pytest.raises(AwsCredentialsError, match="profile 'missing' is not in the shared config files"):
        await start_gateway(
            Settings(port=0, backend="aws", endpoint_url=sts_proxy.endpoint_url, aws_profile="missing")
        )
    assert sts_proxy.actions("PutItem") == []


async def test_a_role_that_cannot_be_assumed_stops_startup(sts_proxy, aws_environment) -> None:
    aws_environment(BASE_KEY, BASE_SECRET)
    sts_proxy.sts_error = "AccessDenied"
    with pytest.raises(AwsCredentialsError, match=f"AssumeRole of {ROLE} failed: AccessDenied") as refused:
        await start_gateway(_settings(sts_proxy, aws_role_external_id="external-id-42"))
    assert "external-id-42" not in str(refused.value) and BASE_SECRET not in str(refused.value)


async def test_a_refresh_that_fails_to_the_end_is_assume_role_failed(
    sts_proxy, aws_environment, admin
) -> None:
    aws_environment(BASE_KEY, BASE_SECRET)
    table = await create_table(admin, "expiring")
    clock = sts_proxy.clock = Clock()
    gateway = await role_gateway(_settings(sts_proxy), clock)
    try:
        sts_proxy.sts_error = "AccessDenied"  # the role's trust policy changed under the gateway
        clock.advance(700)  # inside the advisory window: the old credentials still serve
        await _put(gateway, table, "a")
        clock.advance(170)  # 30 s left: a refresh is mandatory, and fails
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            from dynamo_gateway.v1 import service_pb2_grpc

            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await service_pb2_grpc.DynamoDBServiceStub(channel).GetItem(
                    service_pb2.GetItemRequest(table_name=table, key=key("a"))
                )
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert details(failed.value)["info"].reason == "Authentication.AssumeRoleFailed"
        assert "RetryInfo" not in details(failed.value)
    finally:
        await gateway.stop(0)
