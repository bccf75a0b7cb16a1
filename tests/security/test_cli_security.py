"""`dgw` against a gateway that serves TLS and checks callers' bearer tokens."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys

from tests.security.conftest import Pki, create_table, write_tokens


async def _dgw(served_port: int, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMO_GATEWAY_")}
    if token is not None:
        env["DYNAMO_GATEWAY_TOKEN"] = token
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dynamo_gateway.cli", "--target", f"127.0.0.1:{served_port}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_dgw_speaks_tls_and_sends_the_token(serve, pki: Pki, admin, tmp_path: pathlib.Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml", {"ops": "s3cret-ops-token"})
    served = await serve(
        tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file), auth_tokens_file=str(tokens)
    )
    table = await create_table(admin, "cli")
    tls = ("--ca-file", str(pki.ca_file))
    put = await _dgw(
        served.port, *tls, "put", table, '{"pk": "a", "sk": "0", "n": 1}', token="s3cret-ops-token"
    )
    assert put.returncode == 0, put.stderr
    got = await _dgw(served.port, *tls, "get", table, '{"pk": "a", "sk": "0"}', token="s3cret-ops-token")
    assert got.returncode == 0, got.stderr
    assert '"n": 1' in got.stdout
    # No token: the gateway refuses; a wrong CA: the handshake fails. Neither leaks the token.
    anonymous = await _dgw(served.port, *tls, "get", table, '{"pk": "a", "sk": "0"}')
    assert anonymous.returncode != 0
    assert "UNAUTHENTICATED" in anonymous.stderr or "Unauthenticated" in anonymous.stderr
    plaintext = await _dgw(served.port, "get", table, '{"pk": "a", "sk": "0"}', token="s3cret-ops-token")
    assert plaintext.returncode != 0
    for result in (put, got, anonymous, plaintext):
        assert "s3cret-ops-token" not in result.stdout + result.stderr
    missing = await _dgw(served.port, "--ca-file", str(tmp_path / "nope.pem"), "get", table, "{}")
    assert missing.returncode == 2
    assert "nope.pem" in missing.stderr
