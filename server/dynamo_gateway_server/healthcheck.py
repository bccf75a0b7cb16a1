"""Container health check: exits 0 when the local gateway reports SERVING.

Used by the Dockerfile's HEALTHCHECK so the image needs no extra binary. Reads
the port from DYNAMO_GATEWAY_PORT (default 50051).
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    port = os.environ.get("DYNAMO_GATEWAY_PORT", "50051")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
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
