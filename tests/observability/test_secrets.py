"""Secrets never reach a log line, a metric, a span or an error: SecretString and the canary test."""

from __future__ import annotations

import os
import pickle
import uuid

import grpc
import pytest

from dynamo_gateway import GatewayClient, GatewayError
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.observability.secrets import SecretRegistry, SecretString, safe_metadata

from .conftest import settle


def test_a_secret_string_redacts_itself_everywhere() -> None:
    secret = SecretString("hunter2-hunter2")
    for shown in (
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        str([secret]),
        str({"k": secret}),
    ):
        assert "hunter2" not in shown
    assert secret.reveal() == "hunter2-hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_the_registry_scrubs_registered_values_and_ignores_short_ones() -> None:
    registry = SecretRegistry()
    registry.register(SecretString("long-secret-value"))
    registry.register("abc")  # too short: redacting it would mangle ordinary text
    assert registry.redact("x long-secret-value y abc") == "x *** y abc"


def test_credential_metadata_is_wrapped() -> None:
    safe = safe_metadata(
        [("authorization", "Bearer t0k3n"), ("x-session-token", "s3cr3t"), ("user-agent", "ua")]
    )
    assert isinstance(safe["authorization"], SecretString) and isinstance(
        safe["x-session-token"], SecretString
    )
    assert safe["user-agent"] == "ua"


async def test_a_canary_secret_appears_in_no_log_metric_span_or_error(
    observe, table_factory, capture_logs, monkeypatch
) -> None:
    canary = f"canary{uuid.uuid4().hex}"
    # The gateway's own credentials (the standard chain reads them), a caller's token, and the salt.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"AKIA{canary}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"{canary}-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", f"{canary}-session")
    # TRACE: the most verbose level, where even botocore's request headers are logged.
    logs = capture_logs("TRACE", environ=dict(os.environ))
    observed = await observe(key_hash_salt=f"{canary}-salt")
    table = await table_factory()
    client = GatewayClient(observed.channel)
    caller_metadata = (("authorization", f"Bearer {canary}-caller"), ("x-api-key", f"{canary}-api"))

    await client.put_item(table, {"pk": "a", "sk": "1"})
    request = service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "a"}, "sk": {"s": "1"}})
    await observed.stub.GetItem(request, metadata=caller_metadata)
    failures: list[grpc.aio.AioRpcError] = []
    for bad in (
        service_pb2.GetItemRequest(table_name="throttled-canary", key={"pk": {"s": "a"}}),
        service_pb2.GetItemRequest(table_name="denied-canary", key={"pk": {"s": "a"}}),
        service_pb2.GetItemRequest(table_name=table),  # invalid: no key
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await observed.stub.GetItem(bad, metadata=caller_metadata)
        failures.append(caught.value)
    with pytest.raises(GatewayError):
        await client.get_item("unavailable-canary", {"pk": "a"})
    [page async for page in client.parallel_scan(table, total_segments=2)]
    await settle()

    log_text = logs.text()
    metrics_text = await observed.scrape_text()
    spans_text = "\n".join(span.to_json() for span in observed.exporter.get_finished_spans())
    errors_text = "\n".join(
        f"{error.details()} {error.trailing_metadata()} {error.debug_error_string()}" for error in failures
    )
    # The places were exercised: botocore logged its signed requests, the caller's metadata was logged.
    assert any(line["logger"].startswith("botocore") for line in logs.lines())
    assert "'authorization': '***'" in log_text or '"authorization": "***"' in log_text
    assert "dynamodb_operations_total" in metrics_text and "dynamodb.get_item" in spans_text
    for name, text in (
        ("logs", log_text),
        ("metrics", metrics_text),
        ("spans", spans_text),
        ("errors", errors_text),
    ):
        assert canary not in text, f"the canary leaked into {name}"
