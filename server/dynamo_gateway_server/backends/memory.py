"""The embedded memory backend: a DynamoDB-compatible engine the gateway starts itself.

For now the engine is moto's DynamoDB app in a child process on a loopback port
(a child, not a thread, so its CPU does not compete with the gateway's event loop
for the GIL), served with keep-alive connections (moto_server.py) and reached
through the ordinary aws backend. The child binds port 0 and reports the port it
got, so no other process can take the port between choosing and binding it.
Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

from .aws import AwsBackend, AwsBackendOptions
from .json_protocol import JsonProtocolBackend

_START_TIMEOUT_S = 60.0
# moto accepts any keys; fixed ones keep the real credential chain out of the way.
_EMULATOR_CREDENTIALS = ("memory", "memory")


def free_loopback_port() -> int:
    """A loopback port nothing listened on a moment ago.

    Racy for starting a server (another process may bind it before the server does):
    servers bind port 0 and report theirs. What remains for this is a port that must
    be known to be dead (tests of an unreachable DynamoDB).
    """
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
    async def start(cls, port: int = 0) -> MotoServerProcess:
        """Starts the child on `port` (0: a free one it picks) and returns once it listens."""
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", f"{__package__}.moto_server", "--host", "127.0.0.1", "--port", str(port)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            bound = await _reported_port(process)
        except BaseException:
            await _stop(process)
            raise
        return cls(process, bound)

    async def stop(self) -> None:
        await _stop(self.process)


async def _reported_port(process: asyncio.subprocess.Process) -> int:
    """The port on the child's first line of stdout, written once it listens."""
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(f"moto server did not report its port within {_START_TIMEOUT_S:.0f} s") from None
    if not line:  # end of file: the child exited before it listened
        code = await process.wait()
        raise RuntimeError(f"moto server exited with code {code} before it listened")
    try:
        return int(line)
    except ValueError:
        raise RuntimeError(f"moto server reported {line[:80]!r} instead of its port") from None


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()


class MemoryBackend:
    """The aws backend pointed at an embedded engine it owns."""

    def __init__(self, engine: MotoServerProcess, backend: AwsBackend | JsonProtocolBackend) -> None:
        self.engine = engine
        self._backend = backend

    @classmethod
    async def start(
        cls, options: AwsBackendOptions, client: type[AwsBackend | JsonProtocolBackend] = AwsBackend
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

    async def client_for_region(
        self,
        options: AwsBackendOptions,
        region: str,
        client: type[AwsBackend | JsonProtocolBackend] = AwsBackend,
    ) -> AwsBackend | JsonProtocolBackend:
        """Another client of the same engine, signing for `region`: the engine keeps each region's
        tables apart, as DynamoDB does (nothing is replicated between them)."""
        return await client.start(
            AwsBackendOptions(
                region=region,
                endpoint_url=self.engine.endpoint_url,
                max_concurrency=options.max_concurrency,
                connect_timeout_s=options.connect_timeout_s,
                read_timeout_s=options.read_timeout_s,
                max_attempts=options.max_attempts,
                static_credentials=_EMULATOR_CREDENTIALS,
            )
        )

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._backend.call(operation, params)

    async def close(self) -> None:
        try:
            await self._backend.close()
        finally:
            await self.engine.stop()
