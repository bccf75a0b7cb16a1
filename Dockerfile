# dynamo-gateway: build a virtualenv in one stage, copy it into a slim non-root runtime.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY client/ client/
COPY server/ server/
RUN pip install -c constraints.txt ./client .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /opt/venv /opt/venv
COPY examples/tables.yaml /etc/dynamo-gateway/tables.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DYNAMO_GATEWAY_HOST=0.0.0.0 \
    DYNAMO_GATEWAY_PORT=50051 \
    DYNAMO_GATEWAY_METRICS_PORT=9464
USER 10001
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-m", "dynamo_gateway_server.healthcheck"]
ENTRYPOINT ["dynamo-gateway"]
