"""The container health check works against a TLS gateway, with the certificates it is given."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.security.conftest import Pki


async def _healthcheck(port: int, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMO_GATEWAY_")}
    env.update({"DYNAMO_GATEWAY_PORT": str(port), **environ})
    # A child process, as Docker runs it; the gateway keeps serving on this loop meanwhile.
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dynamo_gateway_server.healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_healthcheck_speaks_tls_and_mtls(serve, pki: Pki) -> None:
    served = await serve(tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file))
    tls = {"DYNAMO_GATEWAY_TLS_CERT_FILE": str(pki.cert_file)}
    result = await _healthcheck(served.port, **tls, DYNAMO_GATEWAY_HEALTHCHECK_CA_FILE=str(pki.ca_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SERVING"
    # Plaintext against a TLS port, or a CA that did not sign the server: unhealthy, not a hang.
    assert (await _healthcheck(served.port)).returncode == 1
    assert (await _healthcheck(served.port, **tls)).returncode == 1

    mutual = await serve(
        tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file), tls_client_ca_file=str(pki.ca_file)
    )
    client = pki.client()
    (pki.directory / "probe.crt").write_bytes(client.cert_pem)
    (pki.directory / "probe.key").write_bytes(client.key_pem)
    with_ca = {**tls, "DYNAMO_GATEWAY_HEALTHCHECK_CA_FILE": str(pki.ca_file)}
    assert (await _healthcheck(mutual.port, **with_ca)).returncode == 1  # no client certificate
    result = await _healthcheck(
        mutual.port,
        **with_ca,
        DYNAMO_GATEWAY_HEALTHCHECK_CERT_FILE=str(pki.directory / "probe.crt"),
        DYNAMO_GATEWAY_HEALTHCHECK_KEY_FILE=str(pki.directory / "probe.key"),
    )
    assert result.returncode == 0, result.stderr
