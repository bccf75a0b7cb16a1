"""The boto3 facade against boto3 itself: one script of calls, equal results and errors, case by case.

Every data-plane operation with its options and every error kind the emulators can
produce runs through boto3.client("dynamodb") straight to an emulator and through
the facade and a gateway to another emulator of the same kind. Known differences
are listed, with their reasons, in script.DIFFERENCES; anything else fails here.
"""

from __future__ import annotations

import pytest

from dynamo_gateway.boto3_compat import async_client, client
from tests.compat import harness
from tests.compat.conftest import Stack
from tests.compat.script import DIFFERENCES


def _report(stack: Stack, found: list[str]) -> str:
    return f"{len(found)} of {len(stack.cases)} calls differ on {stack.kind}:\n" + "\n".join(found)


def test_sync_facade_answers_as_boto3(stack: Stack, reference: list[harness.Outcome]) -> None:
    harness.create_tables(stack.behind.endpoint_url)
    with client("dynamodb", target=stack.gateway.target) as dynamodb:
        outcomes = harness.run_sync(dynamodb, stack.cases)
    found = harness.differences(stack.cases, stack.kind, reference, outcomes)
    assert not found, _report(stack, found)


async def test_async_facade_answers_as_boto3(stack: Stack, reference: list[harness.Outcome]) -> None:
    harness.create_tables(stack.behind.endpoint_url)
    async with async_client("dynamodb", target=stack.gateway.target) as dynamodb:
        outcomes = await harness.run_async(dynamodb, stack.cases)
    found = harness.differences(stack.cases, stack.kind, reference, outcomes)
    assert not found, _report(stack, found)


def test_script_covers_every_operation_and_error_kind(stack: Stack, reference: list[harness.Outcome]) -> None:
    """The script is only as good as its coverage: each served operation, success and failure."""
    methods = {case.method for case in stack.cases}
    served = {"get_item", "put_item", "update_item", "delete_item", "query", "scan"}
    served |= {"batch_get_item", "batch_write_item"}
    if stack.kind == "moto":
        served |= {"transact_get_items", "transact_write_items"}
    assert served <= methods
    kinds = {o.get("error") or "ok" for o in reference}
    wanted = {"ok", "ClientError", "ConditionalCheckFailedException", "ResourceNotFoundException"}
    wanted |= {"ParamValidationError"}
    if stack.kind == "moto":
        wanted |= {"TransactionCanceledException"}
    assert wanted <= kinds, kinds
    codes = {o["response"]["Error"]["Code"] for o in reference if "response" in o}
    assert "ValidationException" in codes
    if stack.kind == "moto":  # dynalite has no ReturnValuesOnConditionCheckFailure
        old_items = [o for o in reference if "Item" in o.get("response", {})]
        assert old_items, "a failed condition returning the old item (Item) is compared"


def test_the_harness_catches_a_difference(stack: Stack, reference: list[harness.Outcome]) -> None:
    """A facade answering one call differently would fail the comparison (the test has teeth)."""
    faithful = [harness.expected(c, stack.kind, o) for c, o in zip(stack.cases, reference, strict=True)]
    assert harness.differences(stack.cases, stack.kind, reference, faithful) == []
    tampered = list(faithful)
    index = next(i for i, o in enumerate(tampered) if "ok" in o and o["ok"].get("Item"))
    tampered[index] = {"ok": {**tampered[index]["ok"], "Item": {"pk": {"S": "changed"}}}}
    found = harness.differences(stack.cases, stack.kind, reference, tampered)
    assert len(found) == 1 and stack.cases[index].name in found[0]


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_every_known_difference_is_explained(name: str) -> None:
    for differs in DIFFERENCES[name]:
        assert differs.who in ("emulator", "gateway", "facade")
        assert len(differs.why) > 20
