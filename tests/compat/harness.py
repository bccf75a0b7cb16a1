"""Running the differential script and reducing each call to a comparable outcome.

An outcome is what a caller can observe, minus what legitimately varies between two
servers: ResponseMetadata (request ids, HTTP headers, retry counts). Errors keep
their class name, the whole parsed error response (Error.Code, Error.Message and
the modeled members: message, Item, CancellationReasons) or, for botocore's own
parameter validation, its text.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from dynamo_gateway.boto3_compat import UnsupportedOperationError

from .script import TABLES, Case, Outcome


def direct_client(endpoint_url: str) -> Any:
    """boto3's own client straight to an emulator: the reference."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def create_tables(endpoint_url: str) -> None:
    """The script's tables, fresh, on one emulator (control plane: boto3 directly)."""
    client = direct_client(endpoint_url)
    existing = set(client.list_tables()["TableNames"])
    for spec in TABLES:
        if spec["TableName"] in existing:
            client.delete_table(TableName=spec["TableName"])
            client.get_waiter("table_not_exists").wait(
                TableName=spec["TableName"], WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
            )
        client.create_table(**spec)
        client.get_waiter("table_exists").wait(
            TableName=spec["TableName"], WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
        )


def _error_outcome(error: BaseException) -> Outcome:
    if isinstance(error, ClientError):
        response = {k: v for k, v in error.response.items() if k != "ResponseMetadata"}
        return {"error": type(error).__name__, "response": response}
    if isinstance(error, ParamValidationError):
        return {"error": "ParamValidationError", "report": str(error)}
    if isinstance(error, UnsupportedOperationError):
        return {"error": "UnsupportedOperationError", "message": str(error)}
    raise error


def _ok(response: dict[str, Any]) -> Outcome:
    assert "ResponseMetadata" in response, "boto3 responses always carry ResponseMetadata"
    return {"ok": {k: v for k, v in response.items() if k != "ResponseMetadata"}}


def run_sync(client: Any, cases: list[Case]) -> list[Outcome]:
    outcomes = []
    for case in cases:
        try:
            outcomes.append(_ok(getattr(client, case.method)(**copy.deepcopy(case.params))))
        except (ClientError, ParamValidationError, UnsupportedOperationError) as error:
            outcomes.append(_error_outcome(error))
    return outcomes


async def run_async(client: Any, cases: list[Case]) -> list[Outcome]:
    outcomes = []
    for case in cases:
        method: Callable[..., Awaitable[dict[str, Any]]] = getattr(client, case.method)
        try:
            outcomes.append(_ok(await method(**copy.deepcopy(case.params))))
        except (ClientError, ParamValidationError, UnsupportedOperationError) as error:
            outcomes.append(_error_outcome(error))
    return outcomes


def expected(case: Case, kind: str, direct: Outcome) -> Outcome:
    """What the facade must answer: boto3's own outcome, unless a known difference says otherwise."""
    differs = case.differs_on(kind)
    return differs.expect(direct) if differs else direct


def _sorted_sets(value: Any) -> Any:
    """DynamoDB's sets have no order; emulators hand their members back in different ones."""
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in ("SS", "NS", "BS") and isinstance(v, list) else _sorted_sets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_sorted_sets(v) for v in value]
    return value


def normalize(case: Case, outcome: Outcome) -> Outcome:
    """Removes what DynamoDB leaves unordered: set members, and BatchGetItem's items per table."""
    outcome = _sorted_sets(outcome)
    if case.method == "batch_get_item" and "ok" in outcome:
        responses = outcome["ok"].get("Responses", {})
        outcome["ok"]["Responses"] = {t: sorted(items, key=repr) for t, items in responses.items()}
    return outcome


def differences(cases: list[Case], kind: str, direct: list[Outcome], facade: list[Outcome]) -> list[str]:
    """One line per case whose outcomes differ (empty: the facade behaved as boto3)."""
    assert len(direct) == len(facade) == len(cases)
    found = []
    for case, reference, outcome in zip(cases, direct, facade, strict=True):
        want = normalize(case, expected(case, kind, reference))
        outcome = normalize(case, outcome)
        if outcome != want:
            found.append(f"{case.name}:\n    boto3:  {want!r}\n    facade: {outcome!r}")
    return found
