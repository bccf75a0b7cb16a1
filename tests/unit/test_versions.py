"""Versioned writes: the rewritten requests, what a failure or a read-back means, and the stage.

The stage runs on a scripted fake backend: each call takes the next answer (a response, or an
error to raise) and is recorded, so every request the gateway sends is asserted exactly.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from dynamo_gateway_server.backends import BackendError, BackendUnavailableError, OutcomeUnknownError
from dynamo_gateway_server.codec import InvalidRequestError
from dynamo_gateway_server.key_schema import KeySchema, KeySchemaCache
from dynamo_gateway_server.tables import VersionSpec
from dynamo_gateway_server.versions import (
    APPLIED,
    CALLERS_CONDITION,
    CONFLICT,
    LOG_LENGTH,
    NOT_APPLIED,
    UNKNOWN,
    VersionConflictError,
    VersionedAction,
    VersionedWrites,
    after_condition_failed,
    after_unknown,
    rewrite,
    version_of,
)

SPEC = VersionSpec("v")  # start 1, increment 1, log in _version_log
TOKEN = "our-token"
KEY = {"pk": {"S": "a"}}


def item(version: int | None = None, log: dict[int, str] | None = None, **extra: Any) -> dict[str, Any]:
    """An item of table t, with a version and a version log when given."""
    made: dict[str, Any] = {**KEY, **extra}
    if version is not None:
        made["v"] = {"N": str(version)}
    if log is not None:
        made["_version_log"] = {"M": {str(n): {"S": t} for n, t in log.items()}}
    return made


# ---------------------------------------------------------------- rewrite


def test_a_put_expecting_a_version_checks_it_and_stores_the_next() -> None:
    params = {
        "TableName": "t",
        "Item": item(name={"S": "x"}),
        "ConditionExpression": "attribute_exists(#n) OR size(#n) > :z",
        "ExpressionAttributeNames": {"#n": "name"},
        "ExpressionAttributeValues": {":z": {"N": "0"}},
    }
    original = copy.deepcopy(params)
    rewritten, action = rewrite("Put", params, SPEC, 3, TOKEN, "")
    # The caller's condition keeps its meaning (parenthesised before the AND).
    assert rewritten["ConditionExpression"] == (
        "(attribute_exists(#n) OR size(#n) > :z) AND (#dgw_version = :dgw_expected)"
    )
    assert rewritten["ExpressionAttributeNames"] == {"#n": "name", "#dgw_version": "v"}
    assert rewritten["ExpressionAttributeValues"] == {":z": {"N": "0"}, ":dgw_expected": {"N": "3"}}
    assert rewritten["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert rewritten["Item"] == item(4, {4: TOKEN}, name={"S": "x"})
    assert action == VersionedAction("Put", "t", SPEC, 3, 4, TOKEN, wants_old_on_failure=False)
    assert params == original  # the caller's request is not changed in place


def test_a_put_of_a_new_item_starts_at_start_and_sends_no_empty_values() -> None:
    spec = VersionSpec("v", start=10, increment=5)
    rewritten, action = rewrite("Put", {"TableName": "t", "Item": item()}, spec, None, TOKEN, "")
    assert rewritten["ConditionExpression"] == "attribute_not_exists(#dgw_version)"
    assert "ExpressionAttributeValues" not in rewritten  # DynamoDB refuses an empty map
    assert rewritten["Item"] == item(10, {10: TOKEN})
    assert action.next == 10
    # Later writes add the increment to the version they expect.
    assert rewrite("Put", {"TableName": "t", "Item": item()}, spec, 10, TOKEN, "")[1].next == 15


def test_a_puts_log_carries_the_newest_entries_of_its_item() -> None:
    # A read-modify-write copies the log; the Put keeps the newest entries below the next version.
    carried = item(12, {n: f"t{n}" for n in range(1, 13)})
    entries = carried["_version_log"]["M"]
    entries["11"] = {"N": "11"}  # malformed token: dropped
    entries["x"] = {"S": "tx"}  # not a version: dropped
    entries["13"] = {"S": "from-a-later-write"}  # not below the next version: dropped
    rewritten, _ = rewrite("Put", {"TableName": "t", "Item": carried}, SPEC, 12, TOKEN, "")
    log = rewritten["Item"]["_version_log"]["M"]
    assert len(log) == LOG_LENGTH
    assert log == {"13": {"S": TOKEN}, **{str(n): {"S": f"t{n}"} for n in (12, 10, 9, 8, 7, 6, 5)}}


def test_a_puts_log_that_is_not_a_map_is_replaced() -> None:
    put = {"TableName": "t", "Item": item(2, _version_log={"S": "junk"})}
    assert rewrite("Put", put, SPEC, 2, TOKEN, "")[0]["Item"]["_version_log"] == {"M": {"3": {"S": TOKEN}}}


def test_an_update_joins_the_callers_clauses_and_records_its_token() -> None:
    params = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "SET #n = :n REMOVE old",
        "ExpressionAttributeNames": {"#n": "name"},
        "ExpressionAttributeValues": {":n": {"S": "x"}},
    }
    rewritten, action = rewrite("Update", params, SPEC, 10, TOKEN, "")
    assert rewritten["UpdateExpression"] == (
        "SET #n = :n, #dgw_version = :dgw_next, #dgw_log.#dgw_entry = :dgw_token"
        " REMOVE old, #dgw_log.#dgw_stale"
    )
    # The entry LOG_LENGTH versions back is removed, so the log keeps LOG_LENGTH entries.
    assert rewritten["ExpressionAttributeNames"] == {
        "#n": "name",
        "#dgw_version": "v",
        "#dgw_log": "_version_log",
        "#dgw_entry": "11",
        "#dgw_stale": "3",
    }
    assert rewritten["ExpressionAttributeValues"] == {
        ":n": {"S": "x"},
        ":dgw_expected": {"N": "10"},
        ":dgw_next": {"N": "11"},
        ":dgw_token": {"S": TOKEN},
    }
    assert rewritten["ConditionExpression"] == "#dgw_version = :dgw_expected"
    assert (action.kind, action.next) == ("Update", 11)


def test_the_stale_log_entry_is_log_length_increments_back() -> None:
    spec = VersionSpec("v", increment=5)
    rewritten, _ = rewrite("Update", {"TableName": "t", "Key": KEY}, spec, 50, TOKEN, "")
    names = rewritten["ExpressionAttributeNames"]
    assert (names["#dgw_entry"], names["#dgw_stale"]) == ("55", str(55 - LOG_LENGTH * 5))


@pytest.mark.parametrize(("expected", "fresh_log", "next_version"), [(None, False, 1), (4, True, 5)])
def test_an_update_of_an_item_without_a_log_sets_the_whole_log(
    expected: int | None, fresh_log: bool, next_version: int
) -> None:
    params = {"TableName": "t", "Key": KEY}  # no UpdateExpression of its own
    rewritten, _ = rewrite("Update", params, SPEC, expected, TOKEN, "", fresh_log=fresh_log)
    assert rewritten["UpdateExpression"] == "SET #dgw_version = :dgw_next, #dgw_log = :dgw_log"
    assert rewritten["ExpressionAttributeValues"][":dgw_log"] == {"M": {str(next_version): {"S": TOKEN}}}
    assert rewritten["ExpressionAttributeValues"][":dgw_next"] == {"N": str(next_version)}


def test_placeholders_never_collide_with_the_callers() -> None:
    names = {
        p: f"caller{p}" for p in ("#dgw_version", "#dgw_version2", "#dgw_log", "#dgw_entry", "#dgw_stale")
    }
    values = {p: {"S": p} for p in (":dgw_expected", ":dgw_next", ":dgw_token")}
    params = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "SET #dgw_version = :dgw_next",  # the caller's own attribute, "caller#dgw_version"
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    rewritten, _ = rewrite("Update", params, SPEC, 10, TOKEN, "")
    assert rewritten["ConditionExpression"] == "#dgw_version3 = :dgw_expected2"
    assert rewritten["UpdateExpression"] == (
        "SET #dgw_version = :dgw_next, #dgw_version3 = :dgw_next2, #dgw_log2.#dgw_entry2 = :dgw_token2"
        " REMOVE #dgw_log2.#dgw_stale2"
    )
    assert rewritten["ExpressionAttributeNames"] == {
        **names,
        "#dgw_version3": "v",
        "#dgw_log2": "_version_log",
        "#dgw_entry2": "11",
        "#dgw_stale2": "3",
    }
    assert rewritten["ExpressionAttributeValues"] == {
        **values,
        ":dgw_expected2": {"N": "10"},
        ":dgw_next2": {"N": "11"},
        ":dgw_token2": {"S": TOKEN},
    }


@pytest.mark.parametrize(("callers", "wants_old"), [(None, False), ("NONE", False), ("ALL_OLD", True)])
def test_the_old_item_is_always_asked_for_and_the_callers_choice_remembered(
    callers: str | None, wants_old: bool
) -> None:
    params: dict[str, Any] = {"TableName": "t", "Key": KEY}
    if callers is not None:
        params["ReturnValuesOnConditionCheckFailure"] = callers
    rewritten, action = rewrite("Delete", params, SPEC, 2, TOKEN, "")
    assert rewritten["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert action.wants_old_on_failure is wants_old


@pytest.mark.parametrize("kind", ["Delete", "ConditionCheck"])
def test_a_delete_or_condition_check_only_checks(kind: str) -> None:
    params = {
        "TableName": "t",
        "Key": KEY,
        "ConditionExpression": "a = :a",
        "ExpressionAttributeValues": {":a": {"N": "1"}},
    }
    rewritten, action = rewrite(kind, params, SPEC, 7, TOKEN, "")
    assert rewritten == {
        **params,
        "ConditionExpression": "(a = :a) AND (#dgw_version = :dgw_expected)",
        "ExpressionAttributeNames": {"#dgw_version": "v"},
        "ExpressionAttributeValues": {":a": {"N": "1"}, ":dgw_expected": {"N": "7"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    assert (action.kind, action.expected, action.next) == (kind, 7, 8)
    absent, _ = rewrite(kind, {"TableName": "t", "Key": KEY}, SPEC, None, TOKEN, "")
    assert absent["ConditionExpression"] == "attribute_not_exists(#dgw_version)"
    assert "ExpressionAttributeValues" not in absent


@pytest.mark.parametrize(
    ("expression", "names", "touched"),
    [
        ("SET v = :x", {}, "v"),
        ("SET #x = :x", {"#x": "v"}, "v"),
        ("ADD v :one", {}, "v"),
        ("SET a = if_not_exists(v, :z)", {}, "v"),
        ("REMOVE _version_log", {}, "_version_log"),
        ("SET #l.#e = :t", {"#l": "_version_log", "#e": "9"}, "_version_log"),
        ("SET v = :x REMOVE _version_log", {}, "_version_log, v"),
    ],
)
@pytest.mark.parametrize(
    ("prefix", "field"), [("", "update_expression"), ("transact_items[2].update.", None)]
)
def test_an_update_naming_the_version_or_its_log_is_refused(
    expression: str, names: dict[str, str], touched: str, prefix: str, field: str | None
) -> None:
    params = {"TableName": "t", "Key": KEY, "UpdateExpression": expression, "ExpressionAttributeNames": names}
    with pytest.raises(InvalidRequestError) as refused:
        rewrite("Update", params, SPEC, 1, TOKEN, prefix)
    assert refused.value.field == (field or f"{prefix}update_expression")
    assert refused.value.description.startswith(f"{touched} is set by the gateway")


def test_a_nested_attribute_of_the_same_name_is_not_the_version() -> None:
    params = {"TableName": "t", "Key": KEY, "UpdateExpression": "SET doc.v = :x"}
    rewritten, _ = rewrite("Update", params, SPEC, 1, TOKEN, "")
    assert rewritten["UpdateExpression"].startswith("SET doc.v = :x, #dgw_version = :dgw_next")


# ---------------------------------------------------------------- what a failure or a read-back means


def action(kind: str = "Put", expected: int | None = 3) -> VersionedAction:
    next_version = SPEC.start if expected is None else expected + SPEC.increment
    return VersionedAction(kind, "t", SPEC, expected, next_version, TOKEN, False)


@pytest.mark.parametrize(
    ("kind", "expected", "found", "verdict"),
    [
        ("Put", 3, item(4, {4: TOKEN}), APPLIED),  # an earlier attempt of this write landed
        ("Put", 3, item(3), CALLERS_CONDITION),
        ("Put", 3, item(5, {4: "theirs", 5: "theirs"}), CONFLICT),
        ("Put", 3, None, CONFLICT),
        ("Put", 3, item(), CONFLICT),  # an item without a version is not version 3
        ("Put", None, None, CALLERS_CONDITION),
        ("Put", None, item(), CALLERS_CONDITION),  # unversioned: attribute_not_exists held
        ("Put", None, item(1, {1: "theirs"}), CONFLICT),
        ("Put", None, item(1, {1: TOKEN}), APPLIED),
        ("Delete", 3, item(3), CALLERS_CONDITION),
        ("Delete", 3, item(4), CONFLICT),
    ],
)
def test_after_condition_failed(
    kind: str, expected: int | None, found: dict[str, Any] | None, verdict: str
) -> None:
    assert after_condition_failed(action(kind, expected), found) == verdict


@pytest.mark.parametrize(
    ("kind", "expected", "found", "verdict"),
    [
        ("Update", 3, item(4, {4: TOKEN}), APPLIED),
        ("Update", 3, item(6, {4: TOKEN, 5: "x", 6: "y"}), APPLIED),  # applied, then moved on
        ("Update", 3, item(3, {3: "x"}), NOT_APPLIED),
        ("Update", 3, item(4, {4: "theirs"}), CONFLICT),  # another write made version 4
        ("Update", 3, item(12, {11: "x", 12: "y"}), UNKNOWN),  # moved on; the log forgot version 4
        ("Put", 3, item(4), UNKNOWN),  # a Put that dropped the log
        ("Put", 3, None, UNKNOWN),
        ("Put", None, None, NOT_APPLIED),
        ("Put", None, item(), NOT_APPLIED),
        ("Put", None, item(1, {1: TOKEN}), APPLIED),
        ("Put", None, item(1, {1: "theirs"}), CONFLICT),
        ("Put", None, item(3, {3: "x"}), UNKNOWN),
        ("Delete", 3, None, APPLIED),  # the version it expected is gone
        ("Delete", 3, item(3), NOT_APPLIED),
        ("Delete", 3, item(5), CONFLICT),
        ("Delete", 3, item(2), UNKNOWN),  # made again since, perhaps
        ("Delete", 3, item(), UNKNOWN),
        ("Delete", None, None, APPLIED),
        ("Delete", None, item(), NOT_APPLIED),
        ("Delete", None, item(1), UNKNOWN),
    ],
)
def test_after_unknown(kind: str, expected: int | None, found: dict[str, Any] | None, verdict: str) -> None:
    assert after_unknown(action(kind, expected), found) == verdict


@pytest.mark.parametrize(
    ("found", "version"),
    [
        ({"v": {"N": "7"}}, 7),
        ({"v": {"N": "-2"}}, -2),
        ({"v": {"N": "7.0"}}, 7),
        ({"v": {"N": "1E2"}}, 100),
        ({"v": {"N": "7.5"}}, None),
        ({"v": {"N": "seven"}}, None),
        ({"v": {"S": "7"}}, None),
        ({"v": "7"}, None),
        ({"v": {"L": []}}, None),
        ({"other": {"N": "7"}}, None),
        (None, None),
    ],
)
def test_version_of(found: dict[str, Any] | None, version: int | None) -> None:
    assert version_of(found, "v") == version


# ---------------------------------------------------------------- the stage, on a scripted backend


class ScriptedBackend:
    """Answers each call with the next scripted answer (raised when an exception); records the calls."""

    def __init__(self, *script: dict[str, Any] | BaseException) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, copy.deepcopy(params)))
        answer = self.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def close(self) -> None:  # pragma: no cover - not used
        pass


def stage(backend: ScriptedBackend, known_schema: bool = True) -> VersionedWrites:
    schemas = KeySchemaCache(backend)
    if known_schema:
        schemas.remember("t", KeySchema("pk"))
    declared = {"t": SPEC, "strict": dataclasses.replace(SPEC, required=True)}
    return VersionedWrites(backend, schemas, declared, new_token=lambda: TOKEN)


def update(**extra: Any) -> dict[str, Any]:
    return {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "SET a = :a",
        "ExpressionAttributeValues": {":a": {"S": "x"}},
        **extra,
    }


def lost_answer() -> OutcomeUnknownError:
    cause = BackendUnavailableError("ReadTimeoutError", "Read timeout", ambiguous=True)
    return OutcomeUnknownError("UpdateItem", "it has a condition", cause)


def condition_failed(old: dict[str, Any] | None) -> BackendError:
    return BackendError("ConditionalCheckFailedException", "The conditional request failed", item=old)


def read_back(operation: str, params: dict[str, Any]) -> bool:
    return (operation, params) == ("GetItem", {"TableName": "t", "Key": KEY, "ConsistentRead": True})


async def test_unversioned_writes_pass_through_unless_the_table_requires_versions() -> None:
    backend = ScriptedBackend({"Attributes": {}})
    answer = await stage(backend).send("UpdateItem", update(), {})
    assert backend.calls == [("UpdateItem", update())]
    assert (answer.response, answer.versions) == ({"Attributes": {}}, {})
    with pytest.raises(InvalidRequestError) as refused:
        await stage(backend).send("PutItem", {"TableName": "strict", "Item": item()}, {})
    assert refused.value.field == "expected_version"
    assert "requires versioned writes" in refused.value.description
    assert len(backend.calls) == 1  # the refused write was not sent


async def test_an_expected_version_on_a_table_that_declares_none_is_refused() -> None:
    backend = ScriptedBackend()
    with pytest.raises(InvalidRequestError) as refused:
        await stage(backend).send("DeleteItem", {"TableName": "plain", "Key": KEY}, {0: 1})
    assert refused.value.field == "expected_version"
    assert "table plain declares no version attribute" in refused.value.description
    assert backend.calls == []


async def test_a_versioned_write_reports_the_next_version_and_a_delete_none() -> None:
    backend = ScriptedBackend({}, {})
    answer = await stage(backend).send("UpdateItem", update(), {0: 3})
    assert answer.versions == {0: 4}
    assert backend.calls[0][1] == rewrite("Update", update(), SPEC, 3, TOKEN, "")[0]
    answer = await stage(backend).send("DeleteItem", {"TableName": "t", "Key": KEY}, {0: 3})
    assert answer.versions == {}


async def test_a_false_condition_on_another_version_is_a_conflict_with_the_current_item() -> None:
    current = item(5, {5: "theirs"})
    backend = ScriptedBackend(condition_failed(current))
    with pytest.raises(VersionConflictError) as conflict:
        await stage(backend).send("PutItem", {"TableName": "t", "Item": item(name={"S": "x"})}, {0: 3})
    error = conflict.value
    # The key comes from the Put's item, through the table's key schema.
    assert (error.table, error.key, error.expected) == ("t", KEY, 3)
    assert (error.current_version, error.current_item, error.action_index) == (5, current, 0)
    assert str(error) == "version conflict on t: the write expected version 3, but the item has version 5"


@pytest.mark.parametrize(
    ("asked", "kept"), [({}, False), ({"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}, True)]
)
async def test_a_false_condition_at_the_expected_version_is_the_callers_own(
    asked: dict[str, str], kept: bool
) -> None:
    failure = condition_failed(item(3))
    backend = ScriptedBackend(failure)
    with pytest.raises(BackendError) as raised:
        await stage(backend).send("UpdateItem", update(**asked), {0: 3})
    assert raised.value is failure
    # The gateway asked for the old item for itself: the caller gets it only if they asked too.
    assert raised.value.item == (item(3) if kept else None)


async def test_a_false_condition_without_the_old_item_reads_it() -> None:
    # Some emulators do not return the old item: the gateway reads it to decide.
    backend = ScriptedBackend(condition_failed(None), {"Item": item(6)})
    with pytest.raises(VersionConflictError) as conflict:
        await stage(backend).send("UpdateItem", update(), {0: 3})
    assert conflict.value.current_version == 6
    assert read_back(*backend.calls[1])


@pytest.mark.parametrize(
    ("returns", "found", "attributes", "unknown"),
    [
        ("NONE", item(4, {4: TOKEN}), None, False),
        ("ALL_NEW", item(4, {4: TOKEN}), item(4, {4: TOKEN}), False),
        # Applied, but another write has moved the item on: its new values are not ours to return.
        ("ALL_NEW", item(5, {4: TOKEN, 5: "theirs"}), None, True),
        ("ALL_OLD", item(4, {4: TOKEN}), None, True),
        ("UPDATED_NEW", item(4, {4: TOKEN}), None, True),
    ],
)
async def test_a_lost_answer_is_resolved_by_reading_our_token(
    returns: str, found: dict[str, Any], attributes: dict[str, Any] | None, unknown: bool
) -> None:
    backend = ScriptedBackend(lost_answer(), {"Item": found})
    answer = await stage(backend).send("UpdateItem", update(ReturnValues=returns), {0: 3})
    assert answer.versions == {0: 4}
    assert answer.response == ({} if attributes is None else {"Attributes": attributes})
    assert answer.return_values_unknown is unknown
    assert [op for op, _ in backend.calls] == ["UpdateItem", "GetItem"]
    assert read_back(*backend.calls[1])


async def test_a_lost_answer_not_applied_is_sent_again_with_the_same_token() -> None:
    backend = ScriptedBackend(lost_answer(), {"Item": item(3, {3: "x"})}, {"Attributes": {"a": {"S": "x"}}})
    answer = await stage(backend).send("UpdateItem", update(ReturnValues="UPDATED_NEW"), {0: 3})
    assert (answer.response, answer.versions) == ({"Attributes": {"a": {"S": "x"}}}, {0: 4})
    assert [op for op, _ in backend.calls] == ["UpdateItem", "GetItem", "UpdateItem"]
    assert backend.calls[2] == backend.calls[0]  # same version condition, same token


async def test_a_repeat_that_finds_the_late_first_attempt_applied_succeeds() -> None:
    # Not applied at the read; the repeat's condition fails because the first attempt landed since.
    landed = item(4, {4: TOKEN})
    backend = ScriptedBackend(lost_answer(), {"Item": item(3)}, condition_failed(landed))
    answer = await stage(backend).send("UpdateItem", update(ReturnValues="ALL_NEW"), {0: 3})
    assert (answer.response, answer.versions) == ({"Attributes": landed}, {0: 4})


async def test_a_lost_answer_with_another_token_under_the_next_version_is_a_conflict() -> None:
    backend = ScriptedBackend(lost_answer(), {"Item": item(4, {4: "theirs"})})
    with pytest.raises(VersionConflictError) as conflict:
        await stage(backend).send("UpdateItem", update(), {0: 3})
    assert (conflict.value.expected, conflict.value.current_version) == (3, 4)


async def test_a_lost_answer_on_an_item_that_moved_on_stays_unknown() -> None:
    lost = lost_answer()
    backend = ScriptedBackend(lost, {"Item": item(12, {12: "theirs"})})
    with pytest.raises(OutcomeUnknownError) as raised:
        await stage(backend).send("UpdateItem", update(), {0: 3})
    assert raised.value is lost


async def test_a_failing_read_back_is_tried_again_while_it_is_retryable() -> None:
    throttled = BackendError("ProvisionedThroughputExceededException", "Rate exceeded")
    backend = ScriptedBackend(lost_answer(), throttled, {"Item": item(4, {4: TOKEN})})
    answer = await stage(backend).send("UpdateItem", update(), {0: 3})
    assert answer.versions == {0: 4}
    assert [op for op, _ in backend.calls] == ["UpdateItem", "GetItem", "GetItem"]


async def test_a_read_back_refused_for_good_leaves_the_outcome_unknown() -> None:
    lost = lost_answer()
    backend = ScriptedBackend(lost, BackendError("AccessDeniedException", "not allowed"))
    with pytest.raises(OutcomeUnknownError) as raised:
        await stage(backend).send("UpdateItem", update(), {0: 3})
    assert raised.value is lost


async def test_a_lost_delete_of_an_item_now_gone_was_applied() -> None:
    backend = ScriptedBackend(lost_answer(), {})
    answer = await stage(backend).send("DeleteItem", {"TableName": "t", "Key": KEY}, {0: 3})
    assert (answer.response, answer.versions, answer.return_values_unknown) == ({}, {}, False)


async def test_a_lost_put_whose_key_cannot_be_known_stays_unknown() -> None:
    # No key schema (DescribeTable fails): nothing to read back.
    lost = lost_answer()
    backend = ScriptedBackend(lost, BackendError("ResourceNotFoundException", "no table"))
    with pytest.raises(OutcomeUnknownError) as raised:
        await stage(backend, known_schema=False).send("PutItem", {"TableName": "t", "Item": item()}, {0: 3})
    assert raised.value is lost
    assert [op for op, _ in backend.calls] == ["PutItem", "DescribeTable"]


NO_LOG_YET = "The document path provided in the update expression is invalid for update"


async def test_an_item_without_a_log_gets_one_on_its_first_versioned_update() -> None:
    backend = ScriptedBackend(BackendError("ValidationException", NO_LOG_YET), {})
    answer = await stage(backend).send("UpdateItem", update(), {0: 3})
    assert answer.versions == {0: 4}
    sent = backend.calls[1][1]
    assert sent["UpdateExpression"] == "SET a = :a, #dgw_version = :dgw_next, #dgw_log = :dgw_log"
    assert sent["ExpressionAttributeValues"][":dgw_log"] == {"M": {"4": {"S": TOKEN}}}


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        ("UpdateItem", update(), "One or more parameter values were invalid"),
        ("PutItem", {"TableName": "t", "Item": item()}, NO_LOG_YET),  # only an Update adds to the log
    ],
)
async def test_other_validation_errors_are_not_sent_again(
    operation: str, params: dict[str, Any], message: str
) -> None:
    failure = BackendError("ValidationException", message)
    backend = ScriptedBackend(failure)
    with pytest.raises(BackendError) as raised:
        await stage(backend).send(operation, params, {0: 3})
    assert raised.value is failure
    assert len(backend.calls) == 1


async def test_a_lost_first_update_of_an_item_without_a_log_is_sent_again_with_a_fresh_log() -> None:
    backend = ScriptedBackend(
        lost_answer(), {"Item": item(3)}, BackendError("ValidationException", NO_LOG_YET), {}, {}
    )
    answer = await stage(backend).send("UpdateItem", update(), {0: 3})
    assert answer.versions == {0: 4}
    assert backend.calls[-1][1]["UpdateExpression"].endswith("#dgw_log = :dgw_log")


# ---------------------------------------------------------------- transactions and batches


def transaction(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"TransactItems": list(actions), "ClientRequestToken": "ctoken"}


CHECK = {"ConditionCheck": {"TableName": "strict", "Key": KEY, "ConditionExpression": "attribute_exists(pk)"}}


async def test_a_transaction_versions_each_action_it_expects_a_version_for() -> None:
    backend = ScriptedBackend({})
    params = transaction(
        {"Put": {"TableName": "t", "Item": item()}},
        {"Delete": {"TableName": "t", "Key": KEY}},
        CHECK,  # unversioned: a condition check writes nothing, so a strict table allows it
        {"Update": update()},
    )
    answer = await stage(backend).send("TransactWriteItems", params, {0: None, 1: 2, 3: 7})
    # Only the actions that write a version report one.
    assert answer.versions == {0: 1, 3: 8}
    ((operation, sent),) = backend.calls
    assert operation == "TransactWriteItems" and sent["ClientRequestToken"] == "ctoken"
    items = sent["TransactItems"]
    assert items[0]["Put"]["Item"] == item(1, {1: TOKEN})
    assert items[1]["Delete"]["ConditionExpression"] == "#dgw_version = :dgw_expected"
    assert items[2] == CHECK
    # An Update in a transaction sets the whole log (whether the item has one cannot be known).
    assert (
        items[3]["Update"]["UpdateExpression"] == "SET a = :a, #dgw_version = :dgw_next, #dgw_log = :dgw_log"
    )


async def test_a_transaction_without_versions_is_sent_as_it_is() -> None:
    backend = ScriptedBackend({"ConsumedCapacity": []})
    params = transaction({"Update": update()}, CHECK)
    answer = await stage(backend).send("TransactWriteItems", params, {})
    assert backend.calls == [("TransactWriteItems", params)]
    assert (answer.response, answer.versions) == ({"ConsumedCapacity": []}, {})


@pytest.mark.parametrize(
    ("actions", "expected", "field"),
    [
        (
            [{"Put": {"TableName": "t", "Item": item()}}, {"Put": {"TableName": "strict", "Item": item()}}],
            {0: 1},
            "transact_items[1].put.expected_version",
        ),
        ([{"Update": update(TableName="plain")}], {0: 1}, "transact_items[0].update.expected_version"),
        (
            [{"Update": update(UpdateExpression="REMOVE v")}],
            {0: 1},
            "transact_items[0].update.update_expression",
        ),
    ],
)
async def test_a_transactions_refusals_name_the_action(
    actions: list[dict[str, Any]], expected: dict[int, int], field: str
) -> None:
    backend = ScriptedBackend()
    with pytest.raises(InvalidRequestError) as refused:
        await stage(backend).send("TransactWriteItems", transaction(*actions), expected)
    assert refused.value.field == field
    assert backend.calls == []


def cancelled(*reasons: dict[str, Any]) -> BackendError:
    return BackendError(
        "TransactionCanceledException", "Transaction cancelled", cancellation_reasons=list(reasons)
    )


async def test_a_cancelled_transaction_names_the_action_whose_version_did_not_match() -> None:
    current = item(9, {9: "theirs"})
    backend = ScriptedBackend(
        cancelled({"Code": "None"}, {"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": current})
    )
    params = transaction({"Put": {"TableName": "t", "Item": item()}}, CHECK, {"Update": update()})
    with pytest.raises(VersionConflictError) as conflict:
        await stage(backend).send("TransactWriteItems", params, {0: 1, 2: 7})
    error = conflict.value
    assert (error.action_index, error.key, error.expected, error.current_version) == (2, KEY, 7, 9)
    assert error.current_item == current


async def test_a_cancelled_transaction_for_the_callers_own_condition_is_raised_as_it_is() -> None:
    failure = cancelled({"Code": "ConditionalCheckFailed", "Item": item(7)}, {"Code": "None"})
    backend = ScriptedBackend(failure)
    params = transaction({"Update": update(ConditionExpression="a = :a")}, CHECK)
    with pytest.raises(BackendError) as raised:
        await stage(backend).send("TransactWriteItems", params, {0: 7})
    assert raised.value is failure
    # The old item was the gateway's to ask for, not the caller's.
    assert raised.value.cancellation_reasons == [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]


async def test_a_batch_write_is_refused_on_a_table_that_requires_versions() -> None:
    writes = stage(ScriptedBackend())
    put = {"PutRequest": {"Item": item()}}
    with pytest.raises(InvalidRequestError) as refused:
        await writes.check("BatchWriteItem", {"RequestItems": {"t": [put], "strict": [put]}})
    assert refused.value.field == "request_items[strict]"
    assert "BatchWriteItem cannot carry a condition" in refused.value.description
    # Tables where versions are optional, and other operations, pass.
    await writes.check("BatchWriteItem", {"RequestItems": {"t": [put], "plain": [put]}})
    await writes.check(
        "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "strict", "Item": item()}}]}
    )
