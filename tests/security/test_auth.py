"""Caller authentication: static tokens (hashed), JWTs against a JWKS, health and reflection left open."""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from joserfc.jwk import ECKey

from dynamo_gateway.errors import UnauthenticatedError, from_rpc_error
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.security.auth import (
    Authenticator,
    JwtRules,
    JwtVerifier,
    Unauthenticated,
    parse_jwks,
    parse_tokens,
    token_digest,
)
from dynamo_gateway_server.security.files import SecurityConfigError, WatchedFile

from .conftest import (
    AUDIENCE,
    ISSUER,
    JwtIssuer,
    bearer,
    create_table,
    details,
    key,
    write_atomically,
    write_tokens,
)

TOKEN = "dgw_reporting_0123456789abcdef0123456789abcdef"


def _verifier(issuer: JwtIssuer, leeway_s: int = 0) -> Authenticator:
    keys = WatchedFile(str(issuer.jwks_file), "JWKS file", parse_jwks)
    return Authenticator(jwts=JwtVerifier(keys, JwtRules(ISSUER, (AUDIENCE, "other"), ("ES256",), leeway_s)))


# ---------------------------------------------------------------- the files


def test_a_tokens_file_holds_digests_not_tokens() -> None:
    with pytest.raises(SecurityConfigError, match=r"tokens\[0\]\.sha256: 64 hex digits"):
        parse_tokens(f"tokens:\n  - name: a\n    sha256: {TOKEN}\n".encode())
    twice = f"tokens:\n  - {{name: a, sha256: {token_digest(TOKEN)}}}\n  - {{name: b, sha256: {token_digest(TOKEN)}}}\n"
    with pytest.raises(SecurityConfigError, match=r"tokens\[1\]: the same token as 'a'"):
        parse_tokens(twice.encode())
    with pytest.raises(SecurityConfigError, match="expected exactly `name` and `sha256`"):
        parse_tokens(b"tokens:\n  - {name: a, token: x}\n")


def test_a_jwks_with_a_private_or_shared_key_is_refused() -> None:
    private = ECKey.generate_key("P-256").as_dict(private=True)
    with pytest.raises(SecurityConfigError, match="is a private key"):
        parse_jwks(json.dumps({"keys": [private]}).encode())
    shared = {"kty": "oct", "k": base64.urlsafe_b64encode(b"s" * 32).decode()}
    with pytest.raises(SecurityConfigError, match="kty must be one of"):
        parse_jwks(json.dumps({"keys": [shared]}).encode())


def test_a_jwks_file_that_is_not_json_text_is_refused_by_name() -> None:
    with pytest.raises(SecurityConfigError, match=r"JWKS file keys\.json: not JSON"):
        parse_jwks(b"{not json", "keys.json")
    with pytest.raises(SecurityConfigError, match="not UTF-8"):
        parse_jwks(b'{"keys": "\x80"}', "keys.json")


# ---------------------------------------------------------------- the verdicts


def test_static_tokens_identify_their_caller(tmp_path: pathlib.Path) -> None:
    path = write_tokens(tmp_path / "tokens.yaml", {"reporting": TOKEN})
    authenticator = Authenticator(tokens=WatchedFile(str(path), "tokens file", parse_tokens))
    identity = authenticator.authenticate(bearer(TOKEN))
    assert (identity.principal, identity.method) == ("token:reporting", "token")
    with pytest.raises(Unauthenticated) as refused:
        authenticator.authenticate(bearer(TOKEN + "x"))
    assert refused.value.failure == "unknown_token"
    for metadata, failure in (
        ((), "missing"),
        ((("authorization", f"Basic {TOKEN}"),), "malformed"),
        ((*bearer(TOKEN), *bearer(TOKEN)), "malformed"),
    ):
        with pytest.raises(Unauthenticated) as refused:
            authenticator.authenticate(metadata)
        assert refused.value.failure == failure
        assert TOKEN not in refused.value.message


def test_jwts_are_checked_for_signature_issuer_audience_and_time(jwt_issuer: JwtIssuer) -> None:
    authenticator = _verifier(jwt_issuer)
    identity = authenticator.authenticate(bearer(jwt_issuer.token()))
    assert identity.principal == "jwt:system:serviceaccount:shop:orders"
    assert authenticator.authenticate(bearer(jwt_issuer.token(aud="other"))).method == "jwt"
    impostor = ECKey.generate_key("P-256", parameters={"kid": "k1"})  # same key id, another key
    cases = {
        "expired": jwt_issuer.token(expires_in_s=-1),
        "audience": jwt_issuer.token(aud="someone-else"),
        "issuer": jwt_issuer.token(iss="https://elsewhere.test"),
        "signature": jwt_issuer.token(key=impostor),
        "not_yet_valid": jwt_issuer.token(nbf=2**31),
        "malformed": "not-a-jwt",
    }
    for failure, token in cases.items():
        with pytest.raises(Unauthenticated) as refused:
            authenticator.authenticate(bearer(token))
        assert refused.value.failure == failure, token
        assert token not in refused.value.message


def test_unsigned_and_symmetric_jwts_are_refused(jwt_issuer: JwtIssuer) -> None:
    def encode(part: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "attacker", "exp": 2**31}
    unsigned = f"{encode({'alg': 'none', 'kid': 'k1'})}.{encode(claims)}."
    hmac_signed = f"{encode({'alg': 'HS256', 'kid': 'k1'})}.{encode(claims)}.c2lnbmF0dXJl"
    authenticator = _verifier(jwt_issuer)
    for token in (unsigned, hmac_signed):
        with pytest.raises(Unauthenticated) as refused:
            authenticator.authenticate(bearer(token))
        assert refused.value.failure in ("algorithm", "malformed")


def test_leeway_accepts_a_token_just_expired_within_it(jwt_issuer: JwtIssuer) -> None:
    token = jwt_issuer.token(expires_in_s=-5)
    assert _verifier(jwt_issuer, leeway_s=60).authenticate(bearer(token)).method == "jwt"
    with pytest.raises(Unauthenticated):
        _verifier(jwt_issuer, leeway_s=0).authenticate(bearer(token))


# ---------------------------------------------------------------- through the gateway


async def test_health_and_reflection_are_open_and_data_needs_credentials(serve, tmp_path, admin) -> None:
    table = await create_table(admin, "auth")
    tokens = write_tokens(tmp_path / "tokens.yaml", {"reporting": TOKEN})
    served = await serve(auth_tokens_file=str(tokens))
    channel = served.channel()
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "dynamo_gateway.v1.DynamoDBService" in await _list_services(channel)

    stub = served.stub()
    request = service_pb2.GetItemRequest(table_name=table, key=key("a"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetItem(request)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = details(refused.value)["info"]
    assert (info.reason, info.metadata["failure"]) == ("Caller.Unauthenticated", "missing")
    assert isinstance(from_rpc_error(refused.value), UnauthenticatedError)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetItem(request, metadata=bearer("wrong-token"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "wrong-token" not in f"{refused.value.details()} {refused.value.trailing_metadata()}"
    assert served.recorder.touched(table) == []  # neither call reached DynamoDB
    response = await stub.GetItem(request, metadata=bearer(TOKEN))
    assert not response.found


async def _list_services(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(metadata=metadata)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    await call.done_writing()
    response = await call.read()
    return [service.name for service in response.list_services_response.service]


@pytest.mark.parametrize("mode", ["authenticated", "off"])
async def test_reflection_can_be_closed(serve, tmp_path, mode: str) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml", {"reporting": TOKEN})
    served = await serve(auth_tokens_file=str(tokens), reflection=mode)
    channel = served.channel()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _list_services(channel)
    expected = grpc.StatusCode.UNAUTHENTICATED if mode == "authenticated" else grpc.StatusCode.UNIMPLEMENTED
    assert refused.value.code() == expected
    if mode == "authenticated":
        assert "dynamo_gateway.v1.DynamoDBService" in await _list_services(channel, bearer(TOKEN))
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_tokens_and_jwks_are_reloaded_while_serving(serve, tmp_path, admin, jwt_issuer) -> None:
    table = await create_table(admin, "reload")
    tokens = write_tokens(tmp_path / "tokens.yaml", {"reporting": TOKEN})
    served = await serve(
        auth_tokens_file=str(tokens),
        jwt_jwks_file=str(jwt_issuer.jwks_file),
        jwt_issuer=ISSUER,
        jwt_audiences=AUDIENCE,
        security_reload_interval_s=0.05,
    )
    stub = served.stub()
    request = service_pb2.GetItemRequest(table_name=table, key=key("a"))
    newcomer = "dgw_batch_fedcba9876543210fedcba9876543210"
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"})

    security = served.gateway.security
    security.reloaded.clear()
    write_tokens(tokens, {"batch": newcomer})  # reporting's token is revoked, batch's added
    jwt_issuer.publish(rotated)  # the issuer rotated its key: k1 is gone
    await security.reloaded.wait()
    await asyncio.sleep(0)
    security.reload_now()  # whichever file the loop saw second is in force now too
    await stub.GetItem(request, metadata=bearer(newcomer))
    await stub.GetItem(request, metadata=bearer(jwt_issuer.token(key=rotated)))
    for token in (TOKEN, jwt_issuer.token()):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetItem(request, metadata=bearer(token))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_broken_tokens_file_keeps_the_tokens_in_force(serve, tmp_path, admin) -> None:
    table = await create_table(admin, "broken")
    tokens = write_tokens(tmp_path / "tokens.yaml", {"reporting": TOKEN})
    served = await serve(auth_tokens_file=str(tokens))
    write_atomically(
        tokens, f"tokens:\n  - name: reporting\n    sha256: {TOKEN}\n"
    )  # the token itself: refused
    assert served.gateway.security.reload_now() is False
    await served.stub().GetItem(
        service_pb2.GetItemRequest(table_name=table, key=key("a")), metadata=bearer(TOKEN)
    )


def test_a_broken_security_file_stops_startup(tmp_path: pathlib.Path) -> None:
    from dynamo_gateway_server.config import Settings
    from dynamo_gateway_server.security.layer import SecurityLayer

    bad = tmp_path / "policy.yaml"
    bad.write_text("rules:\n  - callers: [x]\n    tables: [t]\n    access: everything\n")
    with pytest.raises(SecurityConfigError, match=r"rules\[0\]\.access: one of read-only, read-write"):
        SecurityLayer(Settings(policy_file=str(bad)), "svc")
    with pytest.raises(SecurityConfigError, match="cannot be read"):
        SecurityLayer(Settings(auth_tokens_file=str(tmp_path / "missing.yaml")), "svc")


def test_new_token_prints_a_token_and_only_its_digest_for_the_file(tmp_path: pathlib.Path, capsys) -> None:
    from dynamo_gateway_server.security import new_token

    assert new_token.main(["batch-loader"]) == 0
    printed = capsys.readouterr().out
    token = printed.split("\n")[1].strip()
    entry = printed.split("tokens file entry:\n", 1)[1]
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n" + entry)
    assert token not in path.read_text()
    authenticator = Authenticator(tokens=WatchedFile(str(path), "tokens file", parse_tokens))
    assert authenticator.authenticate(bearer(token)).principal == "token:batch-loader"
    assert new_token.main(["bad name"]) == 2


def test_a_jwt_audience_list_needs_one_accepted_audience(jwt_issuer: JwtIssuer) -> None:
    # Kubernetes puts the audiences in a list.
    authenticator = _verifier(jwt_issuer)
    assert authenticator.authenticate(bearer(jwt_issuer.token(aud=["api", AUDIENCE]))).method == "jwt"  # type: ignore[arg-type]  # metadata as a plain list
    with pytest.raises(Unauthenticated) as refused:
        authenticator.authenticate(bearer(jwt_issuer.token(aud=["api", "vault"])))  # type: ignore[arg-type]  # metadata as a plain list
    assert refused.value.failure == "audience"
