"""Transport security with real certificates made in the test: TLS, mTLS, and rotation while serving."""

from __future__ import annotations

import asyncio
import ssl

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.security.files import SecurityConfigError
from dynamo_gateway_server.security.layer import SecurityLayer

from .conftest import SERVER_NAME, Issued, Pki, create_table, issue, key, server_cert, write_atomically


async def _presented_certificate(port: int, pki: Pki, client: Issued | None = None) -> x509.Certificate:
    """Opens a new TLS connection (a new handshake) and returns the certificate the gateway presented."""
    context = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
    context.set_alpn_protocols(["h2"])
    if client is not None:
        chain = pki.directory / "client.crt"
        client_key = pki.directory / "client.key"
        chain.write_bytes(client.cert_pem)
        client_key.write_bytes(client.key_pem)
        context.load_cert_chain(chain, client_key)
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=SERVER_NAME)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    # The server has already sent HTTP/2 frames: drop the connection rather than shut TLS down politely.
    writer.transport.abort()
    return x509.load_der_x509_certificate(der)


async def _healthy(channel: grpc.aio.Channel) -> bool:
    response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return response.status == health_pb2.HealthCheckResponse.SERVING


async def test_tls_serves_only_tls(serve, pki: Pki, admin) -> None:
    table = await create_table(admin, "tls")
    served = await serve(tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file))
    stub = served.stub(pki.channel_credentials())
    assert not (await stub.GetItem(service_pb2.GetItemRequest(table_name=table, key=key("a")))).found
    for credentials in (None, pki.channel_credentials(root=issue("other-ca", ca=True).cert_pem)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(served.channel(credentials)).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    presented = await _presented_certificate(served.port, pki)
    assert presented.serial_number == pki.server.cert.serial_number


async def test_mtls_refuses_clients_without_a_valid_certificate(serve, pki: Pki, admin, tmp_path) -> None:
    table = await create_table(admin, "mtls")
    policy = tmp_path / "policy.yaml"
    write_atomically(
        policy,
        f"rules:\n  - callers: ['mtls:spiffe://test/ns/shop/sa/orders']\n    tables: ['{table}']\n    access: read-only\n",
    )
    served = await serve(
        tls_cert_file=str(pki.cert_file),
        tls_key_file=str(pki.key_file),
        tls_client_ca_file=str(pki.ca_file),
        policy_file=str(policy),
    )
    request = service_pb2.GetItemRequest(table_name=table, key=key("a"))
    # The certificate is the identity: its URI SAN is what the policy names.
    assert not (await served.stub(pki.channel_credentials(pki.client())).GetItem(request)).found
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await served.stub(pki.channel_credentials(pki.client("spiffe://test/ns/other/sa/intruder"))).GetItem(
            request
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "mtls:spiffe://test/ns/other/sa/intruder" in denied.value.details()
    # No certificate, or one from a CA the gateway does not trust: refused in the handshake.
    stranger = pki.client(issuer=issue("stranger-ca", ca=True))
    for credentials in (pki.channel_credentials(), pki.channel_credentials(stranger)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await served.stub(credentials).GetItem(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [op for op in served.recorder.touched(table) if op != "DescribeTable"] == ["GetItem"]


async def test_certificates_are_reloaded_while_serving(serve, pki: Pki) -> None:
    served = await serve(
        tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file), tls_client_ca_file=str(pki.ca_file)
    )
    client = pki.client()
    old_channel = served.channel(pki.channel_credentials(client))
    assert await _healthy(old_channel)
    assert (
        await _presented_certificate(served.port, pki, client)
    ).serial_number == pki.server.cert.serial_number

    # Rotation caught halfway: the new certificate is there, its key is not yet. The old pair stays in use.
    rotated = server_cert(pki.ca)
    write_atomically(pki.cert_file, rotated.cert_pem)
    assert (
        await _presented_certificate(served.port, pki, client)
    ).serial_number == pki.server.cert.serial_number
    tls = served.gateway.security.tls
    assert tls is not None and tls.reloads == 0

    write_atomically(pki.key_file, rotated.key_pem)
    assert (
        await _presented_certificate(served.port, pki, client)
    ).serial_number == rotated.cert.serial_number
    assert tls.reloads == 1
    assert await _healthy(served.channel(pki.channel_credentials(client)))
    assert await _healthy(old_channel)  # connections made before the rotation go on

    # The client CA rotates too: certificates of the new CA are accepted, the old CA's no longer.
    new_ca = issue("test-ca-2", ca=True)
    write_atomically(pki.ca_file, new_ca.cert_pem)
    assert await _healthy(served.channel(pki.channel_credentials(pki.client(issuer=new_ca))))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await health_pb2_grpc.HealthStub(served.channel(pki.channel_credentials(pki.client()))).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_key_that_does_not_match_its_certificate_stops_startup(pki: Pki) -> None:
    other = issue("someone-else")
    write_atomically(pki.key_file, other.key_pem)
    settings = Settings(tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file))
    with pytest.raises(SecurityConfigError, match="does not belong to the certificate") as refused:
        SecurityLayer(settings, "svc")
    key_text = other.key_pem.decode()
    body = "".join(line for line in key_text.splitlines() if "-----" not in line)
    assert body[:40] not in str(refused.value)
    write_atomically(pki.key_file, b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SecurityConfigError, match="not an unencrypted PEM private key"):
        SecurityLayer(settings, "svc")
    encrypted = other.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    write_atomically(pki.key_file, encrypted)
    with pytest.raises(SecurityConfigError, match="not an unencrypted PEM private key"):
        SecurityLayer(settings, "svc")
