# dynamo-gateway: build a virtualenv in one stage, copy it into a slim non-root runtime.
# Reproducible: the bases are pinned by digest (refresh a digest with
# `docker buildx imagetools inspect <image>:<tag>` and change the tag and digest together), the
# Python packages by constraints.txt, and the health probe by its version (scripts/bootstrap.sh's).
# deploy/kubernetes/ runs this image: its Deployment's command is this ENTRYPOINT, and with TLS
# on its probes run grpc-health-probe (the kubelet's own gRPC probes cannot speak TLS).

FROM golang:1.26-bookworm@sha256:b305420a68d0f229d91eb3b3ed9e519fcf2cf5461da4bef997bf927e8c0bfd2b AS probe
ARG HEALTH_PROBE_VERSION=v0.4.62
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOBIN=/out
RUN go install -ldflags="-s -w" "github.com/grpc-ecosystem/grpc-health-probe@${HEALTH_PROBE_VERSION}"

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY client/ client/
COPY server/ server/
# Exact versions from constraints.txt; pip byte-compiles them here, since the root filesystem is
# read-only at run time (PYTHONDONTWRITEBYTECODE below: nothing tries to write there).
RUN pip install -c constraints.txt ./client .

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="dynamo-gateway" \
      org.opencontainers.image.description="A gRPC gateway in front of Amazon DynamoDB" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="python:3.11-slim-bookworm"
# The uid and gid the Kubernetes chart runs as (runAsUser/runAsGroup 10001).
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
COPY --from=probe /out/grpc-health-probe /usr/local/bin/grpc-health-probe
COPY examples/tables.yaml /etc/dynamo-gateway/tables.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DYNAMO_GATEWAY_HOST=0.0.0.0 \
    DYNAMO_GATEWAY_PORT=50051 \
    DYNAMO_GATEWAY_METRICS_PORT=9464
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-m", "dynamo_gateway_server.healthcheck"]
ENTRYPOINT ["dynamo-gateway"]
