"""Container health check: exits 0 when the local gateway reports SERVING.

Used by the Dockerfile's HEALTHCHECK so the image needs no extra binary. Reads the
port from DYNAMO_GATEWAY_PORT (default 50051). When the gateway serves TLS
(DYNAMO_GATEWAY_TLS_CERT_FILE is set) the check speaks TLS too, verifying the
server with DYNAMO_GATEWAY_HEALTHCHECK_CA_FILE (else the system's roots), presenting
DYNAMO_GATEWAY_HEALTHCHECK_CERT_FILE / _KEY_FILE when the gateway requires client
certificates, and expecting DYNAMO_GATEWAY_HEALTHCHECK_SERVER_NAME when the
certificate does not name 127.0.0.1.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

PREFIX = "DYNAMO_GATEWAY_"


def _read(environ: Mapping[str, str], name: str) -> bytes | None:
    path = environ.get(PREFIX + name)
    return pathlib.Path(path).read_bytes() if path else None


def channel_for(environ: Mapping[str, str]) -> grpc.Channel:
    target = f"127.0.0.1:{environ.get(PREFIX + 'PORT', '50051')}"
    if not environ.get(PREFIX + "TLS_CERT_FILE"):
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        _read(environ, "HEALTHCHECK_CA_FILE"),
        _read(environ, "HEALTHCHECK_KEY_FILE"),
        _read(environ, "HEALTHCHECK_CERT_FILE"),
    )
    options = []
    if server_name := environ.get(PREFIX + "HEALTHCHECK_SERVER_NAME"):
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(target, credentials, options=options)


def main(environ: Mapping[str, str] = os.environ) -> int:
    try:
        channel = channel_for(environ)
    except OSError as error:
        print(f"unhealthy: cannot read a health check certificate file ({error.strerror})", file=sys.stderr)
        return 1
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError as error:
            print(f"unhealthy: {error.code().name}", file=sys.stderr)
            return 1
    serving = response.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
