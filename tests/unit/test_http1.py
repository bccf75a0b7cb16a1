"""The lean backend's HTTP/1.1 client against real loopback servers that write scripted raw bytes.

Each test starts an `Origin` (asyncio.start_server on 127.0.0.1, port 0) whose handler
reads whole requests and writes exactly the bytes the test wants: well-formed answers
in every framing, answers cut short, garbage, silence. The origin counts connections,
so reuse and the pool's bound are checked on the server's side of the wire.
Nothing in http1.py is replaced; a few tests read the pool's idle list to wait for the
client to notice an event the server caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiobotocore.credentials import AioCredentials

from dynamo_gateway_server.backends.aws import AwsBackendOptions
from dynamo_gateway_server.backends.base import BackendError, BackendUnavailableError
from dynamo_gateway_server.backends.http1 import (
    MAX_HEAD_BYTES,
    ConnectFailed,
    ConnectionBroken,
    Http1Pool,
    MalformedResponse,
    ReadTimedOut,
)
from dynamo_gateway_server.backends.json_protocol import JsonProtocolBackend
from dynamo_gateway_server.backends.memory import free_loopback_port
from tests.support.backends import backend_options
from tests.support.certs import Issued, issue, server_cert
from tests.support.clocks import ManualClock

# Generous: only reached when a test is about to fail anyway.
WAIT_S = 5.0


# ---------------------------------------------------------------- a scripted loopback server


class Peer:
    """The server's side of one connection, as a handler sees it."""

    def __init__(
        self, origin: Origin, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.number = number  # 1 for the first connection the origin accepted
        self.reader = reader
        self.writer = writer

    async def request(self) -> bytes | None:
        """One whole request (head and body), or None when the client ended the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            body = await self.reader.readexactly(int(length[1]) if length else 0)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        await self.origin.record(request=head + body)
        return head + body

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def trickle(self, data: bytes) -> None:
        """Writes data one byte at a time, pausing so that each byte tends to arrive in its own read."""
        for i in range(len(data)):
            await self.write(data[i : i + 1])
            await asyncio.sleep(0.001)


Handler = Callable[[Peer], Awaitable[None]]


class Origin:
    """A loopback HTTP server run by a scripted handler; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.url = ""
        self.accepts = 0
        self.open = 0
        self.most_open = 0
        self.disconnects = 0
        self.requests: list[bytes] = []
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(self, request: bytes | None = None) -> None:
        if request is not None:
            self.requests.append(request)
        async with self._changed:
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Waits for predicate to hold; it is checked each time a connection or request comes or goes."""
        async with asyncio.timeout(WAIT_S), self._changed:
            await self._changed.wait_for(predicate)

    async def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepts += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        await self.record()
        try:
            await self.handler(Peer(self, self.accepts, reader, writer))
        except asyncio.CancelledError:
            pass  # stop() ended it; Python 3.11's stream callback logs an error for a cancelled task
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(WAIT_S):
                    await writer.wait_closed()
            self.open -= 1
            self.disconnects += 1
            self._tasks.discard(task)
            await self.record()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Origin]:
    origin = Origin(handler)
    server = await asyncio.start_server(origin.on_connect, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    origin.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/"
    try:
        yield origin
    finally:
        server.close()
        await origin.stop()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def pool_to(
    url: str,
    size: int = 4,
    read_timeout_s: float = WAIT_S,
    ssl_context: ssl.SSLContext | None = None,
    max_idle_s: float = WAIT_S,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Http1Pool]:
    pool = Http1Pool(
        url,
        size,
        connect_timeout_s=WAIT_S,
        read_timeout_s=read_timeout_s,
        ssl_context=ssl_context,
        max_idle_s=max_idle_s,
        clock=clock,
    )
    try:
        yield pool
    finally:
        await pool.close()


def request(body: bytes = b"{}") -> bytes:
    return b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)


def answer(body: bytes = b"{}", status: str = "200 OK", headers: str = "") -> bytes:
    """A Content-Length answer; headers are extra raw header lines, each ending in CRLF."""
    return b"HTTP/1.1 %b\r\nContent-Type: application/json\r\n%bContent-Length: %d\r\n\r\n%b" % (
        status.encode(),
        headers.encode(),
        len(body),
        body,
    )


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n"
    b"2;name=value\r\n, \r\n"
    b"A ; a=1; b=2\r\nwide world\r\n"
    b"0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"
)
CHUNKED_BODY = b"hello, wide world"


def answering(*answers: bytes) -> Handler:
    """A handler that answers the connection's requests with answers in turn, the last one repeating."""

    async def handler(peer: Peer) -> None:
        n = 0
        while await peer.request() is not None:
            await peer.write(answers[min(n, len(answers) - 1)])
            n += 1

    return handler


def answering_when(release: asyncio.Event) -> Handler:
    """A handler that holds each request until `release` is set, then answers it with a plain 200."""

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await release.wait()
            await peer.write(answer())

    return handler


async def until_idle_connections(pool: Http1Pool, are: Callable[[Any], bool], never: str) -> None:
    """Waits until the pool has idle connections and every one of them `are`; else fails with `never`."""
    for _ in range(int(WAIT_S / 0.01)):
        if pool._idle and all(are(connection) for connection in pool._idle):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(never)


# ---------------------------------------------------------------- framing


async def test_content_length_answer_in_one_write_is_returned() -> None:
    async with serve(answering(answer(b'{"a":1}', headers="X-Amzn-RequestId: r-1\r\n"))) as origin:
        async with pool_to(origin.url) as pool:
            response = await pool.send(request())
    assert response.status == 200
    assert response.body == b'{"a":1}'
    assert response.headers["x-amzn-requestid"] == "r-1"  # names are lower-cased
    assert response.headers["content-length"] == "7"
    assert origin.requests == [request()]


@pytest.mark.parametrize(
    ("raw", "body"), [(answer(b'{"items":[1,2,3]}'), b'{"items":[1,2,3]}'), (CHUNKED, CHUNKED_BODY)]
)
async def test_answer_written_byte_by_byte_is_assembled(raw: bytes, body: bytes) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.trickle(raw)

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        first = await pool.send(request())
        second = await pool.send(request())
    assert (first.status, first.body) == (200, body)
    assert (second.status, second.body) == (200, body)
    assert origin.accepts == 1


async def test_chunked_answer_with_extensions_and_trailers_is_joined() -> None:
    async with serve(answering(CHUNKED)) as origin, pool_to(origin.url) as pool:
        first = await pool.send(request())
        second = await pool.send(request())
    assert first.body == CHUNKED_BODY
    assert first.headers["transfer-encoding"] == "chunked"
    # The trailers were consumed with the answer: the connection was framed right for the next one.
    assert second.body == CHUNKED_BODY
    assert origin.accepts == 1


async def test_answer_framed_by_close_is_returned_and_its_connection_not_reused() -> None:
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            await peer.write(b'{"until":"close"}')
        # Returning closes the connection: the end of the body.

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        first = await pool.send(request())
        second = await pool.send(request())
    assert first.body == second.body == b'{"until":"close"}'
    assert origin.accepts == 2


async def test_interim_100_continue_head_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b'{"real":true}', status="201 Created")
    async with serve(answering(raw)) as origin, pool_to(origin.url) as pool:
        response = await pool.send(request())
    assert (response.status, response.body) == (201, b'{"real":true}')


async def test_interim_head_in_a_separate_write_is_skipped() -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(0.01)
            await peer.write(answer(b"{}"))

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        response = await pool.send(request())
    assert (response.status, response.body) == (200, b"{}")


# ---------------------------------------------------------------- keep-alive


async def test_sequential_sends_share_one_connection() -> None:
    async with serve(answering(answer())) as origin, pool_to(origin.url) as pool:
        for _ in range(3):
            assert (await pool.send(request())).status == 200
    assert origin.accepts == 1
    assert len(origin.requests) == 3


async def test_connection_close_in_the_answer_makes_the_next_send_reconnect() -> None:
    async with (
        serve(answering(answer(headers="Connection: close\r\n"))) as origin,
        pool_to(origin.url) as pool,
    ):
        await pool.send(request())
        await pool.send(request())
    assert origin.accepts == 2


async def test_idle_connection_closed_by_the_server_is_not_reused() -> None:
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(answer())  # a keep-alive answer; then the server closes while idle

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        await pool.send(request())
        await until_idle_connections(
            pool,
            lambda connection: connection.closed,
            "the client never saw the server close its idle connection",
        )
        response = await pool.send(request())
    assert response.status == 200
    assert origin.accepts == 2


async def test_connection_idle_longer_than_max_idle_is_closed_not_reused() -> None:
    clock = ManualClock()
    async with (
        serve(answering(answer())) as origin,
        pool_to(origin.url, max_idle_s=30, clock=clock) as pool,
    ):
        await pool.send(request())
        clock.advance(29.9)
        await pool.send(request())  # idle for less than max_idle_s: reused
        assert origin.accepts == 1
        clock.advance(30)  # the server keeps it open; the pool no longer trusts it
        await pool.send(request())
        await origin.until(lambda: origin.disconnects == 1)
    assert origin.accepts == 2


async def test_bytes_after_the_answer_make_its_connection_unusable() -> None:
    # A stray answer right behind the real one: reusing the connection would hand it to the next request.
    raw = answer(b'{"n":"real"}') + answer(b'{"n":"stray"}')
    async with serve(answering(raw)) as origin, pool_to(origin.url) as pool:
        first = await pool.send(request())
        second = await pool.send(request())
    assert first.body == second.body == b'{"n":"real"}'
    assert origin.accepts == 2


async def test_bytes_arriving_on_an_idle_connection_make_it_unusable() -> None:
    stray_now = asyncio.Event()

    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(answer(b'{"n":"real"}'))
            await stray_now.wait()
            await peer.write(answer(b'{"n":"stray"}'))
        while await peer.request() is not None:
            await peer.write(answer(b'{"n":"real"}'))

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        await pool.send(request())
        stray_now.set()
        await until_idle_connections(
            pool,
            lambda connection: not connection.reusable,
            "the client never marked its idle connection unusable",
        )
        response = await pool.send(request())
    assert response.body == b'{"n":"real"}'
    assert origin.accepts == 2


# ---------------------------------------------------------------- failures


async def test_server_closing_mid_answer_raises_connection_broken() -> None:
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(answer(b'{"long":"body"}')[:-5])

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        with pytest.raises(ConnectionBroken) as raised:
            await pool.send(request())
    assert type(raised.value) is ConnectionBroken


async def test_reset_during_an_answer_framed_by_close_raises_connection_broken() -> None:
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(b"HTTP/1.1 200 OK\r\n\r\n" + b'{"cut":')
            await asyncio.sleep(0.05)  # lets the client read the head before the reset
            # Linger 0: close sends a reset, not an end of stream; a cut body must not pass as whole.
            peer.writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            peer.writer.transport.abort()

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        with pytest.raises(ConnectionBroken):
            await pool.send(request())


async def test_server_closing_each_connection_at_once_raises_connection_broken() -> None:
    async def handler(peer: Peer) -> None:
        return  # closes the connection without reading

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        with pytest.raises(ConnectionBroken):
            await pool.send(request())


async def test_garbage_instead_of_http_raises_malformed_response() -> None:
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            await peer.request()  # keeps the connection open: the client must not wait for its end

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        with pytest.raises(MalformedResponse) as raised:
            await pool.send(request())
    assert isinstance(raised.value, ConnectionBroken)  # callers that catch ConnectionBroken see it too


async def test_endless_response_head_raises_malformed_response() -> None:
    async def handler(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.write(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * (MAX_HEAD_BYTES + 1))
            await peer.request()

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        with pytest.raises(MalformedResponse):
            await pool.send(request())


async def test_nothing_listening_raises_connect_failed() -> None:
    # A port that must be dead (nothing listens), not a server's: so no port 0 here.
    async with pool_to(f"http://127.0.0.1:{free_loopback_port()}/") as pool:
        with pytest.raises(ConnectFailed):
            await pool.send(request())


async def test_server_that_never_answers_raises_read_timed_out() -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            pass  # reads every request, answers none

    async with serve(handler) as origin, pool_to(origin.url, read_timeout_s=0.2) as pool:
        with pytest.raises(ReadTimedOut):
            await pool.send(request())
        # The timed-out connection is closed, not left for the next request.
        await origin.until(lambda: origin.disconnects == 1)


def test_only_http_and_https_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="ftp"):
        Http1Pool("ftp://127.0.0.1/", 1, 1.0, 1.0)


# ---------------------------------------------------------------- the pool


async def test_at_most_size_connections_are_open_at_once() -> None:
    release = asyncio.Event()

    async with serve(answering_when(release)) as origin, pool_to(origin.url, size=2) as pool:
        sends = [asyncio.create_task(pool.send(request())) for _ in range(5)]
        await origin.until(lambda: len(origin.requests) >= 2)
        assert not any(send.done() for send in sends)  # two held by the server, three waiting for a slot
        release.set()
        responses = await asyncio.gather(*sends)
    assert [response.status for response in responses] == [200] * 5
    # Counted by the server once every send had its answer: a connection beyond the bound
    # would have carried one of the five requests, so it was accepted by then.
    assert origin.most_open == 2
    assert origin.accepts == 2


async def test_waiting_sends_are_served_in_arrival_order() -> None:
    release = asyncio.Event()

    async with serve(answering_when(release)) as origin, pool_to(origin.url, size=1) as pool:
        sends = [asyncio.create_task(pool.send(request(b'{"n":%d}' % n))) for n in range(5)]
        await origin.until(lambda: len(origin.requests) == 1)
        release.set()
        await asyncio.gather(*sends)
    assert [r.rpartition(b"\r\n\r\n")[2] for r in origin.requests] == [b'{"n":%d}' % n for n in range(5)]


async def test_cancelled_send_closes_its_connection() -> None:
    async def handler(peer: Peer) -> None:
        if peer.number == 1:
            await peer.request()
            await peer.request()  # never answers; returns when the client closes
        else:
            await answering(answer())(peer)

    async with serve(handler) as origin, pool_to(origin.url) as pool:
        send = asyncio.create_task(pool.send(request()))
        await origin.until(lambda: len(origin.requests) == 1)
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
        await origin.until(lambda: origin.disconnects == 1)
        response = await pool.send(request())
    assert response.status == 200
    assert origin.accepts == 2


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def http1_ca() -> Issued:
    return issue("http1-test-ca", ca=True)


@pytest.fixture(scope="module")
def tls_server_context(http1_ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    issued = server_cert(http1_ca)  # valid for 127.0.0.1
    directory = tmp_path_factory.mktemp("http1-tls")
    (directory / "server.crt").write_bytes(issued.cert_pem)
    (directory / "server.key").write_bytes(issued.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    return context


async def test_https_pool_trusting_the_ca_reuses_one_tls_connection(
    http1_ca: Issued, tls_server_context: ssl.SSLContext
) -> None:
    trusting = ssl.create_default_context(cadata=http1_ca.cert_pem.decode())
    async with serve(answering(answer(b'{"tls":true}')), tls_server_context) as origin:
        async with pool_to(origin.url, ssl_context=trusting) as pool:
            first = await pool.send(request())
            second = await pool.send(request())
    assert first.body == second.body == b'{"tls":true}'
    assert origin.accepts == 1


async def test_https_pool_not_trusting_the_ca_raises_connect_failed(
    tls_server_context: ssl.SSLContext,
) -> None:
    other_ca = issue("some-other-ca", ca=True)
    distrusting = ssl.create_default_context(cadata=other_ca.cert_pem.decode())
    async with serve(answering(answer()), tls_server_context) as origin:
        async with pool_to(origin.url, ssl_context=distrusting) as pool:
            with pytest.raises(ConnectFailed):
                await pool.send(request())
    assert origin.requests == []


# ---------------------------------------------------------------- the lean backend on top


def dynamodb_answer(document: dict[str, object], status: str = "200 OK", crc: int | None = None) -> bytes:
    body = orjson.dumps(document)
    crc = zlib.crc32(body) if crc is None else crc
    return answer(body, status, headers=f"x-amzn-RequestId: req-1\r\nx-amz-crc32: {crc}\r\n")


@contextlib.asynccontextmanager
async def lean_backend_at(url: str) -> AsyncIterator[JsonProtocolBackend]:
    options = AwsBackendOptions(
        region="us-east-1",
        endpoint_url=url,
        max_concurrency=2,
        connect_timeout_s=WAIT_S,
        read_timeout_s=WAIT_S,
        max_attempts=1,
    )
    backend = JsonProtocolBackend(url, "us-east-1", AioCredentials("a", "b"), options)
    try:
        yield backend
    finally:
        await backend.close()


GET_ITEM = {"TableName": "tbl", "Key": {"pk": {"S": "a"}}}


async def test_lean_backend_returns_the_decoded_json_of_a_200_answer() -> None:
    item = {"Item": {"pk": {"S": "a"}, "blob": {"B": "AP8="}}}
    async with serve(answering(dynamodb_answer(item))) as origin, lean_backend_at(origin.url) as backend:
        result = await backend.call("GetItem", GET_ITEM)
    assert result == {"Item": {"pk": {"S": "a"}, "blob": {"B": b"\x00\xff"}}}
    head, _, body = origin.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST / HTTP/1.1\r\n")
    assert b"x-amz-target: DynamoDB_20120810.GetItem\r\n" in head
    assert b"authorization: AWS4-HMAC-SHA256 Credential=a/" in head
    assert orjson.loads(body) == GET_ITEM


async def test_lean_backend_raises_backend_error_coded_by_type_for_a_400_answer() -> None:
    error = {
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "message": "The conditional request failed",
    }
    async with serve(answering(dynamodb_answer(error, "400 Bad Request"))) as origin:
        async with lean_backend_at(origin.url) as backend:
            with pytest.raises(BackendError) as raised:
                await backend.call("GetItem", GET_ITEM)
    assert raised.value.code == "ConditionalCheckFailedException"
    assert raised.value.message == "The conditional request failed"
    assert (raised.value.http_status, raised.value.request_id) == (400, "req-1")


async def test_lean_backend_reports_a_crc32_mismatch_as_an_ambiguous_unavailable_error() -> None:
    document = {"Item": {"pk": {"S": "a"}}}
    wrong = (zlib.crc32(orjson.dumps(document)) + 1) & 0xFFFFFFFF
    async with serve(answering(dynamodb_answer(document, crc=wrong))) as origin:
        async with lean_backend_at(origin.url) as backend:
            with pytest.raises(BackendUnavailableError) as raised:
                await backend.call("GetItem", GET_ITEM)
    assert (raised.value.reason, raised.value.ambiguous) == ("ChecksumMismatch", True)


async def test_lean_backend_reports_an_unreachable_endpoint() -> None:
    # A port that must be dead (nothing listens), not a server's: so no port 0 here.
    options = backend_options(
        f"http://127.0.0.1:{free_loopback_port()}", max_concurrency=1, connect_timeout_s=1, read_timeout_s=1
    )
    lean = await JsonProtocolBackend.start(options)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            await lean.call("GetItem", {"TableName": "tbl", "Key": {"pk": {"S": "a"}}})
        assert caught.value.reason == "EndpointConnectionError"
        assert not caught.value.ambiguous
    finally:
        await lean.close()
