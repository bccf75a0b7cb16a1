"""The floor under any Python gateway: the gateway's gRPC service on grpc.aio and uvloop, with
handlers that only return a fixed answer.

Each answer is the stub's DynamoDB answer converted once, at start, by the gateway's own codec,
so ghz receives and decodes the same messages it gets from the gateway. The harness drives it
with the same load as the gateway: its CPU per call and its latency are what gRPC itself costs,
and so the least a gateway built on grpc.aio can cost (no DynamoDB call, no policy, no metrics).

    python bench/grpc_floor.py --port 50061
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
import uvloop

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server import codec
from dynamo_gateway_server.reflection import enable_reflection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stub_dynamodb import canned_answers


def fixed_answers() -> dict[str, Any]:
    """gRPC method -> the response the gateway sends for the stub's answer."""
    stub = {name: json.loads(body) for name, body in canned_answers(scan_pages=1).items()}
    return {
        "GetItem": codec.get_item_response(stub["GetItem"]),
        "PutItem": codec.put_item_response(stub["PutItem"]),
        "Query": codec.query_response(stub["Query"]),
        "Query10": codec.query_response(stub["Query10"]),
        "UpdateItem": codec.update_item_response(stub["UpdateItem"]),
        "BatchGetItem": codec.batch_get_item_response(stub["BatchGetItem"]),
        "BatchWriteItem": service_pb2.BatchWriteItemResponse(),
        "TransactWriteItems": codec.transact_write_items_response(stub["TransactWriteItems"]),
    }


class FixedAnswers(service_pb2_grpc.DynamoDBServiceServicer):
    def __init__(self, answers: dict[str, Any]) -> None:
        self._answers = answers

    async def GetItem(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["GetItem"]

    async def PutItem(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["PutItem"]

    async def Query(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["Query10" if request.limit == 10 else "Query"]

    async def UpdateItem(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["UpdateItem"]

    async def BatchGetItem(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["BatchGetItem"]

    async def TransactWriteItems(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["TransactWriteItems"]

    async def BatchWriteItem(self, request, context):  # type: ignore[override]  # untyped, as the generated base
        return self._answers["BatchWriteItem"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = grpc.aio.server()
    service_pb2_grpc.add_DynamoDBServiceServicer_to_server(FixedAnswers(fixed_answers()), server)
    enable_reflection(server, ("dynamo_gateway.v1.DynamoDBService",))  # ghz finds methods as on the gateway
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop(grace=1)


if __name__ == "__main__":
    uvloop.run(main())
