"""The embedded memory backend: a DynamoDB-compatible engine the gateway starts itself.

For now the engine is moto's DynamoDB app in a child process on a free loopback
port (a child, not a thread, so its CPU does not compete with the gateway's event
loop for the GIL), served with keep-alive connections (moto_server.py) and reached
through the ordinary aws backend. Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from typing import Any

from .aws import AwsBackend, AwsBackendOptions
from .lean import LeanBackend

_START_TIMEOUT_S = 60.0
# moto accepts any keys; fixed ones keep the real credential chain out of the way.
_EMULATOR_CREDENTIALS = ("memory", "memory")


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServerProcess:
    """moto's server mode (moto_server.py) in a child process; stopped with the gateway."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"

    @classmethod
    async def start(cls, port: int | None = None) -> MotoServerProcess:
        port = port or free_loopback_port()
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", f"{__package__}.moto_server", "--host", "127.0.0.1", "--port", str(port)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        server = cls(process, port)
        try:
            await server._wait_until_listening()
        except BaseException:
            await server.stop()
            raise
        return server

    async def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if self.process.returncode is not None:
                raise RuntimeError(f"moto server exited with code {self.process.returncode} while starting")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not listen on port {self.port}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class MemoryBackend:
    """The aws backend pointed at an embedded engine it owns."""

    def __init__(self, engine: MotoServerProcess, backend: AwsBackend | LeanBackend) -> None:
        self.engine = engine
        self._backend = backend

    @classmethod
    async def start(
        cls, options: AwsBackendOptions, client: type[AwsBackend | LeanBackend] = AwsBackend
    ) -> MemoryBackend:
        engine = await MotoServerProcess.start()
        try:
            backend = await client.start(
                AwsBackendOptions(
                    region=options.region,
                    endpoint_url=engine.endpoint_url,
                    max_concurrency=options.max_concurrency,
                    connect_timeout_s=options.connect_timeout_s,
                    read_timeout_s=options.read_timeout_s,
                    max_attempts=options.max_attempts,
                    static_credentials=_EMULATOR_CREDENTIALS,
                )
            )
        except BaseException:
            await engine.stop()
            raise
        return cls(engine, backend)

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._backend.call(operation, params)

    async def close(self) -> None:
        try:
            await self._backend.close()
        finally:
            await self.engine.stop()
