"""Wiring only: builds the backend and the gRPC server, and runs their lifecycle.

Startup: backend (one client per process) -> tables file -> servicer, health,
reflection -> listen -> SERVING. Shutdown on SIGTERM/SIGINT: NOT_SERVING, stop
accepting, let in-flight RPCs finish within the grace period, close the backend.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .backends import DynamoBackend
from .backends.aws import AwsBackend, AwsBackendOptions
from .backends.memory import MemoryBackend
from .config import Settings
from .reflection import enable_reflection
from .service import DynamoDBServicer
from .tables import create_tables, load_tables_file

log = logging.getLogger(__name__)

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["DynamoDBService"].full_name


async def build_backend(settings: Settings) -> DynamoBackend:
    options = AwsBackendOptions(
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        max_concurrency=settings.max_concurrency,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        max_attempts=settings.backend_max_attempts,
    )
    if settings.backend == "memory":
        return await MemoryBackend.start(options)
    return await AwsBackend.start(options)


class Gateway:
    """One running gateway: a gRPC server on a port, in front of one backend."""

    def __init__(self, settings: Settings, backend: DynamoBackend, owns_backend: bool = True) -> None:
        self.settings = settings
        self.backend = backend
        self._owns_backend = owns_backend
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                # One listener per port: a stale process must not silently share it.
                ("grpc.so_reuseport", 0),
            ]
        )
        service_pb2_grpc.add_DynamoDBServiceServicer_to_server(
            DynamoDBServicer(backend, settings.scan_concurrency), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (SERVICE_NAME, health.SERVICE_NAME))
        self.port = 0

    async def start(self) -> int:
        self.port = self.server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving on %s:%d with the %s backend", self.settings.host, self.port, self.settings.backend)
        return self.port

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.settings.grace_period_s if grace_s is None else grace_s
        await self.health.enter_graceful_shutdown()  # every service NOT_SERVING
        await self.server.stop(grace)
        if self._owns_backend:
            await self.backend.close()


async def start_gateway(settings: Settings) -> Gateway:
    backend = await build_backend(settings)
    try:
        if settings.tables_file:
            await create_tables(backend, load_tables_file(settings.tables_file))
        gateway = Gateway(settings, backend)
        await gateway.start()
    except BaseException:
        await backend.close()
        raise
    return gateway


async def serve(settings: Settings) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gateway = await start_gateway(settings)
    await stop.wait()
    log.info("shutting down: in-flight RPCs have %.1fs", settings.grace_period_s)
    await gateway.stop()
    log.info("stopped")
