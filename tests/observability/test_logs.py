"""Logs: JSON lines with trace and request ids, at the levels the spec gives, sampled on request."""

from __future__ import annotations

import pytest

from dynamo_gateway import GatewayClient, GatewayError, TransactPut
from dynamo_gateway.v1 import service_pb2

from .conftest import settle

GATEWAY_LOGGERS = (
    "dynamo_gateway_server.dynamodb",
    "dynamo_gateway_server.resilience",
    "dynamo_gateway_server.rpc",
)


def _ours(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] in GATEWAY_LOGGERS]


async def test_without_an_exporter_lines_still_carry_the_callers_trace(
    observe, table_factory, capture_logs
) -> None:
    logs = capture_logs("DEBUG")
    observed = await observe(record_spans=False)
    table = await table_factory()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    request = service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "a"}, "sk": {"s": "1"}})
    for request_id, metadata in (
        ("req-continued", (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),)),
        ("req-new-trace", ()),
    ):
        await observed.stub.GetItem(request, metadata=(*metadata, ("x-request-id", request_id)))
    await settle()
    lines = _ours(logs.lines())

    continued = [line for line in lines if line["request_id"] == "req-continued"]
    assert {line["logger"] for line in continued} >= {
        "dynamo_gateway_server.rpc",
        "dynamo_gateway_server.dynamodb",
    }
    assert {line["trace_id"] for line in continued} == {trace_id}
    assert all(len(line["span_id"]) == 16 for line in continued)
    new = [line for line in lines if line["request_id"] == "req-new-trace"]
    (new_trace,) = {line["trace_id"] for line in new}
    assert len(new_trace) == 32 and new_trace != trace_id
    assert observed.exporter.get_finished_spans() == ()  # nothing recorded, nothing exported


async def test_lines_carry_ids_levels_and_fields(observe, table_factory, capture_logs) -> None:
    logs = capture_logs("DEBUG")
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    await client.put_item(table, {"pk": "a", "sk": "1"})
    request = service_pb2.UpdateItemRequest(
        table_name=table, key={"pk": {"s": "a"}, "sk": {"s": "1"}}, update_expression="SET v = :v"
    )
    request.expression_attribute_values[":v"].n = "1"
    await observed.stub.UpdateItem(request, metadata=(("x-request-id", "req-update-1"),))
    await client.transact_write([TransactPut(table, {"pk": "b", "sk": "1"})])
    for failing in ("throttled-logs", "denied-logs"):
        with pytest.raises(GatewayError):
            await client.get_item(failing, {"pk": "a"})
    await settle()
    lines = _ours(logs.lines())

    for line in logs.lines():  # every line, the libraries' included, has the ids (empty outside an RPC)
        assert {"ts", "level", "logger", "message", "trace_id", "span_id", "request_id"} <= set(line)
    for line in lines:
        assert len(line["trace_id"]) == 32 and line["request_id"], line

    update = [line for line in lines if line.get("operation") == "UpdateItem"]
    assert {line["request_id"] for line in update} == {"req-update-1"}  # the caller's id is kept
    (span,) = [span for span in observed.spans() if span.name == "dynamodb.update_item"]
    assert {line["trace_id"] for line in update} == {format(span.context.trace_id, "032x")}
    (request_line,) = [line for line in update if line["message"] == "dynamodb request"]
    assert request_line["level"] == "DEBUG" and request_line["UpdateExpression"] == "SET v = :v"
    (completed,) = [line for line in update if line["message"] == "dynamodb operation completed"]
    assert completed["level"] == "INFO" and completed["status"] == "ok" and completed["table"] == table
    assert completed["consumed_capacity"] > 0  # requested on the caller's behalf

    (commit,) = [line for line in lines if line["message"] == "transaction committed"]
    assert commit["level"] == "INFO" and commit["item_count"] == 1

    throttled = [line for line in lines if line.get("table") == "throttled-logs" and line["level"] != "DEBUG"]
    assert [(line["level"], line["message"]) for line in throttled] == [
        ("WARNING", "retrying dynamodb call"),
        ("WARNING", "retrying dynamodb call"),
        ("WARNING", "dynamodb throttled the call"),
    ]
    assert [line["attempt"] for line in throttled[:2]] == [1, 2]
    (denied,) = [line for line in lines if line.get("table") == "denied-logs" and line["level"] != "DEBUG"]
    assert denied["level"] == "ERROR" and denied["error_type"] == "AccessDeniedException"
    assert denied["status"] == "auth_error"


@pytest.mark.parametrize(("every", "expected"), [(0, 0), (2, 2), (1, 4)])
async def test_completed_operations_are_sampled_or_switched_off(
    observe, table_factory, capture_logs, every: int, expected: int
) -> None:
    logs = capture_logs("INFO")
    observed = await observe(operation_log_every=every)
    table = await table_factory()
    client = GatewayClient(observed.channel)
    for number in range(4):
        await client.put_item(table, {"pk": "a", "sk": str(number)})
    with pytest.raises(GatewayError):
        await client.get_item("throttled-sampled", {"pk": "a"})
    lines = _ours(logs.lines())
    assert sum(line["message"] == "dynamodb operation completed" for line in lines) == expected
    assert (
        sum(line["message"] == "dynamodb throttled the call" for line in lines) == 1
    )  # warnings never sampled


async def test_trace_level_logs_full_payloads(observe, table_factory, capture_logs) -> None:
    logs = capture_logs("TRACE")
    observed = await observe()
    table = await table_factory()
    await GatewayClient(observed.channel).put_item(table, {"pk": "a", "sk": "1", "note": "payload-marker"})
    payloads = [line for line in _ours(logs.lines()) if line["level"] == "TRACE"]
    assert any("payload-marker" in line["payload"] for line in payloads)


async def test_info_level_logs_no_payloads_or_expressions(observe, table_factory, capture_logs) -> None:
    logs = capture_logs("INFO")
    observed = await observe()
    table = await table_factory()
    await GatewayClient(observed.channel).put_item(table, {"pk": "a", "sk": "1", "note": "payload-marker"})
    assert "payload-marker" not in logs.text()
    assert any(line["message"] == "dynamodb operation completed" for line in logs.lines())
