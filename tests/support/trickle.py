"""A DynamoDB endpoint that answers byte by byte: a proxy that trickles the emulator's real answers.

Requests go to the emulator unchanged (so a write is applied), then the answer's head is sent at
once and its body one byte every `byte_interval_s`, after `padding_bytes` of leading JSON
whitespace: a body nobody could wait for, yet valid when it finally ends. Only the operations in
`trickled` are slowed; the rest (table setup) are passed on at full speed.
"""

from __future__ import annotations

import asyncio
import collections

import aiohttp
from aiohttp import web


class TricklingProxy:
    def __init__(
        self,
        upstream: str,
        trickled: frozenset[str],
        byte_interval_s: float = 0.1,
        padding_bytes: int = 600,
    ) -> None:
        self.upstream = upstream
        self.trickled = trickled
        self.byte_interval_s = byte_interval_s
        self.padding_bytes = padding_bytes
        self.port = 0  # until start()
        # Operation -> answers begun byte by byte, and of those, how many were sent in full.
        self.trickles_begun: collections.Counter[str] = collections.Counter()
        self.trickles_finished: collections.Counter[str] = collections.Counter()
        # Set when the gateway hangs up in the middle of a trickled answer.
        self.hung_up = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def endpoint_url(self) -> str:
        assert self.port, "the proxy has no port before start()"
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        # handler_cancellation: a trickle stops when the gateway hangs up, not at the end of its bytes.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.post(f"{self.upstream}{request.path_qs}", data=body, headers=headers) as up:
            answer = await up.read()
            status, content_type = up.status, up.headers.get("Content-Type", "application/x-amz-json-1.0")
        if operation not in self.trickled:
            return web.Response(body=answer, status=status, headers={"Content-Type": content_type})
        # Leading whitespace keeps the JSON valid; no CRC32 header, which the padding would break.
        padded = b" " * self.padding_bytes + answer
        response = web.StreamResponse(
            status=status, headers={"Content-Type": content_type, "Content-Length": str(len(padded))}
        )
        await response.prepare(request)  # the head goes at once
        self.trickles_begun[operation] += 1
        try:
            for index in range(len(padded)):
                await response.write(padded[index : index + 1])
                await asyncio.sleep(self.byte_interval_s)
        except (asyncio.CancelledError, ConnectionResetError):
            self.hung_up.set()
            raise
        self.trickles_finished[operation] += 1
        await response.write_eof()
        return response

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
