"""A small keep-alive HTTP/1.1 client for one origin: what the lean backend needs and nothing more.

DynamoDB's protocol is one POST per call with a JSON body and a Content-Length
answer. A general client (aiohttp) spends more CPU per request than the rest of
the gateway's path to DynamoDB (a task, timers, header objects, payload classes);
this one writes each request with one transport.write on a pooled asyncio
protocol and resolves one future when the answer is complete.

- Pool: idle connections are reused newest first (a few stay warm), at most `size`
  in use at once behind a FIFO semaphore, so no caller starves. One idle longer than
  `max_idle_s` is closed instead: a server drops idle connections on its own clock, and
  a request written just as it does is lost with its outcome unknown.
- Failures say whether the request may have reached the server: ConnectFailed
  (never sent: safe to send again) or ConnectionBroken / ReadTimedOut (maybe applied).
- Answers: Content-Length, chunked, or until close; 1xx heads are skipped.
- The read timeout bounds the whole answer from the moment the request is written (botocore's
  bounds each socket read); the caller's deadline, enforced above, is usually the shorter one.
Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Longest response head accepted: DynamoDB's are well under 1 KB.
MAX_HEAD_BYTES = 64 * 1024
# Well under the idle timeouts of AWS endpoints and common proxies; AWS SDKs close theirs after 60 s.
MAX_IDLE_S = 30.0


class ConnectFailed(Exception):
    """No connection: the request was never sent."""


class ConnectionBroken(Exception):
    """The connection ended before the whole answer came: the request may have been applied."""


class ReadTimedOut(Exception):
    """No complete answer within the read timeout: the request may have been applied."""


class MalformedResponse(ConnectionBroken):
    """The server's bytes are not an HTTP/1.1 answer."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; parses the answer as bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0  # the pool's clock when it last went back to the pool
        self._waiter: asyncio.Future[Response] | None = None
        self._buffer = bytearray()
        self._head: tuple[int, dict[str, str]] | None = None
        self._length = 0  # body bytes expected; -1: until close; -2: chunked
        self._chunks = bytearray()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # create_connection hands a stream Protocol a Transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        # Done: the answer is complete but its caller has not resumed yet; more bytes are not its.
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for: the connection can no longer be trusted to frame answers.
            self.reusable = False
            return
        try:
            self._parse()
        except (ValueError, IndexError) as error:
            self._fail(MalformedResponse(f"not an HTTP/1.1 answer: {error}"))

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost finishes the answer or fails it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # Only a clean end frames an answer: after a reset (exc set) the body may be cut short.
        if exc is None and self._head is not None and self._length == -1:
            self._finish(bytes(self._buffer))  # an answer framed by the end of the connection
        else:
            self._fail(ConnectionBroken("the connection closed before the answer was complete"))

    # ------------------------------------------------------------------ one exchange

    async def exchange(self, request: bytes, read_timeout_s: float) -> Response:
        if self.closed or self.transport is None or self.transport.is_closing():
            # Closed by the server between connecting and now: nothing was sent.
            raise ConnectFailed("the connection closed before the request was sent")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._waiter = waiter
        self._head, self._length = None, 0
        self.transport.write(request)
        timer = loop.call_later(read_timeout_s, self._time_out)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _time_out(self) -> None:
        self._fail(ReadTimedOut("no answer within the read timeout"))
        self.close()

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def _finish(self, body: bytes) -> None:
        assert self._head is not None
        status, headers = self._head
        if headers.get("connection", "").lower() == "close" or self._length == -1:
            self.reusable = False
        if self._buffer:
            # Bytes beyond the answer: the next answer on this connection would be read out of step.
            self.reusable = False
        self._head = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Response(status, headers, body))

    # ------------------------------------------------------------------ parsing

    def _parse(self) -> None:
        buffer = self._buffer
        while self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ValueError("response head too long")
                return
            lines = buffer[:end].decode("latin-1").split("\r\n")
            del buffer[: end + 4]
            status = int(lines[0].split(" ", 2)[1])
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self._head = (status, headers)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._length = -2
                self._chunks = bytearray()
            elif status in (204, 304):
                self._length = 0  # no body by definition, whatever the headers say
            elif (length := headers.get("content-length")) is not None:
                self._length = int(length)
            else:
                self._length = -1
        if self._length >= 0:
            if len(buffer) >= self._length:
                body = bytes(buffer[: self._length])
                del buffer[: self._length]
                self._finish(body)
        elif self._length == -2:
            self._parse_chunks()

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buffer[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                # The last chunk, then optional trailers, then an empty line.
                trailers_end = buffer.find(b"\r\n\r\n", line_end)
                if trailers_end < 0 and buffer[line_end : line_end + 4] != b"\r\n\r\n":
                    return
                end = (trailers_end if trailers_end >= 0 else line_end) + 4
                del buffer[:end]
                self._finish(bytes(self._chunks))
                return
            if len(buffer) < line_end + 2 + size + 2:
                return
            self._chunks += buffer[line_end + 2 : line_end + 2 + size]
            del buffer[: line_end + 2 + size + 2]


class Http1Pool:
    """Keep-alive connections to one origin, at most `size` busy at once."""

    def __init__(
        self,
        url: str,
        size: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_s: float = MAX_IDLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` tells how long a connection has been idle; tests pass one they move themselves."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"only http and https endpoints are supported, not {parts.scheme!r}")
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_idle_s = max_idle_s
        self._clock = clock
        self._idle: list[_Connection] = []
        # FIFO: waiters are served in arrival order when every connection is busy.
        self._slots = asyncio.Semaphore(size)

    async def send(self, request: bytes) -> Response:
        """Sends one whole request (head and body) and returns the whole answer."""
        async with self._slots:
            connection = self._idle_connection() or await self._connect()
            try:
                response = await connection.exchange(request, self._read_timeout_s)
            except BaseException:
                # Failed or cancelled mid-exchange: what comes next on it would be out of step.
                connection.close()
                raise
            if connection.reusable and not connection.closed:
                connection.idle_since = self._clock()
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def _idle_connection(self) -> _Connection | None:
        if not self._idle:
            return None
        now = self._clock()
        while self._idle:
            connection = self._idle.pop()
            if (
                connection.reusable  # not if bytes came while it was idle (data_received)
                and not connection.closed
                and connection.transport is not None
                and not connection.transport.is_closing()
                and now - connection.idle_since < self._max_idle_s
            ):
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as error:
            raise ConnectFailed(
                f"could not connect to {self.host}:{self.port}: {type(error).__name__}"
            ) from None
        return connection

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        await asyncio.sleep(0)  # let the transports finish closing
