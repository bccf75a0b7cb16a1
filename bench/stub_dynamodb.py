"""A stub DynamoDB endpoint for benchmarks: fixed valid answers, optional latency, little CPU.

Speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) over a raw asyncio
protocol so that it is never the bottleneck it measures against. Answers
GetItem, PutItem, UpdateItem, DeleteItem, Query (100 items; 10 with "Limit": 10), Scan
(pages of 100 items, `--scan-pages` pages per segment), BatchWriteItem, BatchGetItem (25
items), TransactWriteItems, and DescribeTable for any table. Signatures are not checked.

    python bench/stub_dynamodb.py --port 8000 [--latency-ms 5] [--scan-pages 10]

`--port 0` binds a free port; the first line printed names the port it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal


def _item(n: int) -> dict[str, dict[str, str]]:
    return {
        "pk": {"S": f"user#{n % 97}"},
        "sk": {"S": f"order#{n:08d}"},
        "status": {"S": "shipped"},
        "amount": {"N": str(n * 3 % 1000)},
        "note": {"S": "x" * 64},
    }


def canned_answers(scan_pages: int) -> dict[str, bytes]:
    page = [_item(n) for n in range(100)]
    return {
        "GetItem": json.dumps({"Item": _item(1)}).encode(),
        "PutItem": b"{}",
        "UpdateItem": b"{}",
        "DeleteItem": b"{}",
        "Query": json.dumps({"Items": page, "Count": 100, "ScannedCount": 100}).encode(),
        # A Query with "Limit": 10 (the benchmark's Query10) gets its first 10 items.
        "Query10": json.dumps(
            {
                "Items": page[:10],
                "Count": 10,
                "ScannedCount": 10,
                "LastEvaluatedKey": {"pk": page[9]["pk"], "sk": page[9]["sk"]},
            }
        ).encode(),
        "BatchWriteItem": b'{"UnprocessedItems":{}}',
        # The 25 items the benchmark's BatchGet25 asks for, under its table.
        "BatchGetItem": json.dumps({"Responses": {"bench": page[:25]}, "UnprocessedKeys": {}}).encode(),
        "TransactWriteItems": b"{}",
        "DescribeTable": json.dumps(
            {
                "Table": {
                    "TableName": "bench",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                }
            }
        ).encode(),
        # Scan pages: the last one has no LastEvaluatedKey; the others carry their page number.
        "ScanLast": json.dumps({"Items": page, "Count": 100, "ScannedCount": 100}).encode(),
        **{
            f"Scan{i}": json.dumps(
                {"Items": page, "Count": 100, "ScannedCount": 100, "LastEvaluatedKey": {"pk": {"S": str(i)}}}
            ).encode()
            for i in range(1, scan_pages)
        },
    }


class StubProtocol(asyncio.Protocol):
    def __init__(self, answers: dict[str, bytes], latency_s: float, scan_pages: int) -> None:
        self.answers = answers
        self.latency_s = latency_s
        self.scan_pages = scan_pages
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream Protocol gets a Transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            target = ""
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "x-amz-target":
                    target = value.strip().rpartition(".")[2]
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            payload = self._answer(target, body)
            if self.latency_s:
                asyncio.get_running_loop().call_later(self.latency_s, self._send, payload)
            else:
                self._send(payload)

    def _answer(self, target: str, body: bytes) -> bytes:
        if target == "Scan":
            start = 0
            if b"ExclusiveStartKey" in body:
                start = int(json.loads(body)["ExclusiveStartKey"]["pk"]["S"])
            page = start + 1
            return self.answers["ScanLast" if page >= self.scan_pages else f"Scan{page}"]
        if target == "Query" and b'"Limit":10' in body.replace(b" ", b""):
            return self.answers["Query10"]
        return self.answers.get(target, b"{}")

    def _send(self, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: stub\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--scan-pages", type=int, default=10)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    answers = canned_answers(args.scan_pages)
    server = await loop.create_server(
        lambda: StubProtocol(answers, args.latency_ms / 1000, args.scan_pages),
        "127.0.0.1",
        args.port,
        backlog=1024,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    port = server.sockets[0].getsockname()[1]
    print(f"stub listening on {port} (pid {os.getpid()})", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
