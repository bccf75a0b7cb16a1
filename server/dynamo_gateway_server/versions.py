"""Versioned writes: optimistic locking declared once per table, enforced for every caller.

A table's tables-file entry declares a version attribute (tables.VersionSpec). A
write that says which version it expects (the request's expected_version) gets,
ANDed with its own condition, `#version = :expected` (or, for an item that must
not exist yet, `attribute_not_exists(#version)`) and stores the next version: a
Put in its item, an Update in its SET clause; a Delete only checks. The
placeholder names are chosen not to collide with the caller's.

Every versioned Put or Update also records a fresh write token under the next
version in the item's version log (a map attribute, version -> token, holding
the latest LOG_LENGTH versions). That is what lets the gateway tell afterwards
whether a write whose answer was lost was applied, where the item alone cannot:

- A false condition is a VersionConflictError when the item's version (the item
  comes back with the failure: the gateway always asks for ALL_OLD) is not the
  expected one, and the caller's own ConditionFailed otherwise.
- An ambiguous failure (a 5xx, timeout or reset after sending, which resilience.py
  reports as OutcomeUnknownError) is resolved by a strongly consistent read: our
  token under the next version means applied; the expected version still in place
  means not applied, so the write is sent again with the same token (a late first
  attempt and the repeat cannot both apply: both expect the same version); another
  token under the next version means another writer won (a conflict). Only an item
  that has moved on and whose log no longer holds the next version (a Put that
  dropped the log, or LOG_LENGTH later writes) leaves the outcome unknown.

Must not import gRPC; refuses with the codec's InvalidRequestError.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    DynamoBackend,
    OutcomeUnknownError,
)
from .codec import InvalidRequestError
from .failures import is_retryable
from .key_schema import KeySchemaCache
from .made_here import noted
from .tables import VersionSpec
from .update_expression import top_level_attributes, unused_placeholder, with_actions

# Versions the log keeps: enough for the writes that can land while the gateway reads back.
LOG_LENGTH = 8
# Versions travel as int64 (responses, conflict details): a write whose next version would not
# fit is refused before it is sent, not applied and then unanswerable.
MAX_VERSION = 2**63 - 1
# Reads and repeats after an ambiguous failure before the gateway gives up and says so (the
# caller's deadline bounds them too).
RESOLUTION_ROUNDS = 10

_SINGLE_WRITES = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}
_TRANSACT_WRITES = ("Put", "Update", "Delete")

# What a read-back says of a write whose answer was lost, or that failed its condition.
APPLIED = "applied"
NOT_APPLIED = "not applied"
CONFLICT = "conflict"
UNKNOWN = "unknown"
CALLERS_CONDITION = "the caller's condition"


@dataclass
class WriteAnswer:
    """A write's response, and what the gateway adds to it."""

    response: dict[str, Any]
    # Action position (0 for a single write) -> the item's version after the write.
    versions: dict[int, int] = field(default_factory=dict)
    # Applied (confirmed by reading), but the values ReturnValues asked for cannot be known.
    return_values_unknown: bool = False


@dataclass
class VersionConflictError(Exception):
    """A versioned write expected another version than the item has."""

    table: str
    key: dict[str, Any]
    # None: the write expected no versioned item.
    expected: int | None
    current_version: int | None
    current_item: dict[str, Any] | None
    action_index: int = 0

    def __str__(self) -> str:
        expected = "no item" if self.expected is None else f"version {self.expected}"
        if self.current_item is None:
            current = "there is no item"
        elif self.current_version is None:
            current = "the item has no version"
        else:
            current = f"the item has version {self.current_version}"
        return f"version conflict on {self.table}: the write expected {expected}, but {current}"


def version_of(item: Mapping[str, Any] | None, attribute: str) -> int | None:
    """The item's version (None: no item, no version, or not a whole number)."""
    value = (item or {}).get(attribute)
    if not isinstance(value, Mapping) or "N" not in value:
        return None
    try:
        number = Decimal(value["N"])
    except InvalidOperation:
        return None
    return int(number) if number == number.to_integral_value() else None


def _log_of(item: Mapping[str, Any] | None, spec: VersionSpec) -> dict[str, str]:
    """The item's version log: version (as text) -> the write token that made it."""
    log = (item or {}).get(spec.log_attribute)
    entries = log.get("M") if isinstance(log, Mapping) else None
    if not isinstance(entries, Mapping):
        return {}
    return {
        version: token["S"]
        for version, token in entries.items()
        if isinstance(token, Mapping) and isinstance(token.get("S"), str)
    }


def _carried_log(item: Mapping[str, Any], spec: VersionSpec, next_version: int, token: str) -> dict[str, Any]:
    """A Put's log: the entries its item carries (a read-modify-write copies them), newest kept."""
    kept = []
    for version, carried in _log_of(item, spec).items():
        try:
            number = int(version)
        except ValueError:
            continue
        if number < next_version:
            kept.append((number, carried))
    kept.sort(reverse=True)
    entries = {str(v): {"S": t} for v, t in kept[: LOG_LENGTH - 1]}
    entries[str(next_version)] = {"S": token}
    return {"M": entries}


@dataclass(frozen=True)
class VersionedAction:
    """One write, rewritten to be versioned: what to compare once DynamoDB has answered."""

    kind: str  # Put, Update, Delete or ConditionCheck
    table: str
    spec: VersionSpec
    expected: int | None
    next: int
    token: str
    # The caller asked for the old item on a false condition (else the gateway drops it).
    wants_old_on_failure: bool


def rewrite(
    kind: str,
    params: Mapping[str, Any],
    spec: VersionSpec,
    expected: int | None,
    token: str,
    field: str,
    fresh_log: bool = False,
) -> tuple[dict[str, Any], VersionedAction]:
    """The action's parameters with the version condition and the next version added.

    `field` is where the caller wrote the action ("" or e.g. "transact_items[2].update."), for
    errors. An Update adds its entry to the item's log, unless `fresh_log` (the item has none yet,
    or the write creates it): then it sets the whole log.
    """
    names = dict(params.get("ExpressionAttributeNames", {}))
    values = dict(params.get("ExpressionAttributeValues", {}))

    def name(base: str, attribute: str) -> str:
        placeholder = unused_placeholder(base, names)
        names[placeholder] = attribute
        return placeholder

    def value(base: str, wire: dict[str, Any]) -> str:
        placeholder = unused_placeholder(base, values)
        values[placeholder] = wire
        return placeholder

    version = name("#dgw_version", spec.attribute)
    if expected is None:
        ours = f"attribute_not_exists({version})"
        next_version = spec.start
    else:
        ours = f"{version} = {value(':dgw_expected', {'N': str(expected)})}"
        next_version = expected + spec.increment
        if next_version > MAX_VERSION:
            raise InvalidRequestError(
                f"{field}expected_version",
                f"version {expected} is the last one: the next ({next_version}) would not fit in 64 bits",
            )
    condition = params.get("ConditionExpression")
    rewritten = {
        **params,
        "ConditionExpression": f"({condition}) AND ({ours})" if condition else ours,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if kind == "Put":
        item = dict(params["Item"])
        item[spec.attribute] = {"N": str(next_version)}
        item[spec.log_attribute] = _carried_log(item, spec, next_version, token)
        rewritten["Item"] = item
    elif kind == "Update":
        expression = params.get("UpdateExpression", "")
        touched = top_level_attributes(expression, names) & {spec.attribute, spec.log_attribute}
        if touched:
            raise InvalidRequestError(
                f"{field}update_expression",
                f"{', '.join(sorted(touched))} is set by the gateway on a versioned write; leave it out",
            )
        log = name("#dgw_log", spec.log_attribute)
        sets = [f"{version} = {value(':dgw_next', {'N': str(next_version)})}"]
        removes = []
        if expected is None or fresh_log:
            sets.append(f"{log} = {value(':dgw_log', {'M': {str(next_version): {'S': token}}})}")
        else:
            sets.append(
                f"{log}.{name('#dgw_entry', str(next_version))} = {value(':dgw_token', {'S': token})}"
            )
            stale = next_version - LOG_LENGTH * spec.increment
            removes.append(f"{log}.{name('#dgw_stale', str(stale))}")
        rewritten["UpdateExpression"] = with_actions(expression, sets, removes)
    rewritten["ExpressionAttributeNames"] = names
    if values:  # DynamoDB refuses an empty map (a Put of a new item adds no value)
        rewritten["ExpressionAttributeValues"] = values
    wants_old = params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    action = VersionedAction(kind, str(params["TableName"]), spec, expected, next_version, token, wants_old)
    return rewritten, action


def after_condition_failed(action: VersionedAction, item: Mapping[str, Any] | None) -> str:
    """Why a versioned write's condition was false, given the item as DynamoDB checked it."""
    if _log_of(item, action.spec).get(str(action.next)) == action.token:
        return APPLIED  # an earlier attempt of this very write landed
    if action.expected is None:
        has_version = item is not None and action.spec.attribute in item
        return CONFLICT if has_version else CALLERS_CONDITION
    if version_of(item, action.spec.attribute) != action.expected:
        return CONFLICT
    return CALLERS_CONDITION


def after_unknown(action: VersionedAction, item: Mapping[str, Any] | None) -> str:
    """What a strongly consistent read says of a write whose answer was lost."""
    spec = action.spec
    if _log_of(item, spec).get(str(action.next)) == action.token:
        return APPLIED
    current = version_of(item, spec.attribute)
    if action.kind == "Delete":
        if item is None:
            return APPLIED  # the version it expected is gone; no other write removes an item
        if current == action.expected:
            return NOT_APPLIED
        if current is not None and action.expected is not None and current > action.expected:
            return CONFLICT  # the item moved on from the version the delete expected
        return UNKNOWN
    unchanged = (
        (item is None or spec.attribute not in item)
        if action.expected is None
        else (current == action.expected)
    )
    if unchanged:
        return NOT_APPLIED
    made_by = _log_of(item, spec).get(str(action.next))
    if made_by is not None:
        return CONFLICT  # another write made the version this one would have made
    return UNKNOWN


class VersionedWrites:
    """The versioned-write stage: rewrites, sends, and tells conflicts and lost answers apart."""

    def __init__(
        self,
        backend: DynamoBackend,
        schemas: KeySchemaCache,
        declared: Mapping[str, VersionSpec],
        new_token: Callable[[], str] = lambda: noted(uuid.uuid4().hex),
        count_resolution: Callable[[str, str], None] | None = None,
    ) -> None:
        """`count_resolution(table, outcome)` is told what each read-back after a lost answer found."""
        self._backend = backend
        self._schemas = schemas
        self._declared = dict(declared)
        self._new_token = new_token
        self._count_resolution = count_resolution or (lambda table, outcome: None)

    async def check(self, operation: str, params: Mapping[str, Any]) -> None:
        """Guard check: a table that requires versions cannot take BatchWriteItem (it has no conditions)."""
        if operation != "BatchWriteItem" or not self._declared:
            return
        for table in params.get("RequestItems", {}):
            spec = self._declared.get(table)
            if spec is not None and spec.required:
                raise InvalidRequestError(
                    f"request_items[{table}]",
                    f"table {table} requires versioned writes (version attribute {spec.attribute}) and "
                    "BatchWriteItem cannot carry a condition; use PutItem, DeleteItem or TransactWriteItems "
                    "with expected_version",
                )

    def _spec_for(self, table: str, field: str) -> VersionSpec:
        spec = self._declared.get(table)
        if spec is None:
            raise InvalidRequestError(
                field, f"table {table} declares no version attribute in the gateway's tables file"
            )
        return spec

    def _require_unversioned_allowed(self, table: str, field: str) -> None:
        spec = self._declared.get(table)
        if spec is not None and spec.required:
            raise InvalidRequestError(
                field,
                f"table {table} requires versioned writes: say which version of the item you expect "
                f"(the version attribute is {spec.attribute}; absent: true for a new item)",
            )

    async def send(
        self, operation: str, params: dict[str, Any], expected: Mapping[int, int | None]
    ) -> WriteAnswer:
        """Sends one write RPC's request (PutItem, UpdateItem, DeleteItem or TransactWriteItems)."""
        if operation == "TransactWriteItems":
            return await self._transact(params, expected)
        table = str(params["TableName"])
        if 0 not in expected:
            self._require_unversioned_allowed(table, "expected_version")
            return WriteAnswer(await self._backend.call(operation, params))
        spec = self._spec_for(table, "expected_version")
        kind, token = _SINGLE_WRITES[operation], self._new_token()
        rewritten, action = rewrite(kind, params, spec, expected[0], token, "")

        async def attempt() -> WriteAnswer:
            """One send of this write (every attempt carries the same token)."""
            nonlocal rewritten
            try:
                return await self._send_once(operation, rewritten, action)
            except BackendError as error:
                if not (kind == "Update" and action.expected is not None and _no_log_yet(error)):
                    raise
            # The item was versioned before the gateway kept its log: this write starts one.
            rewritten, _ = rewrite(kind, params, spec, expected[0], token, "", fresh_log=True)
            return await self._send_once(operation, rewritten, action)

        try:
            return await attempt()
        except OutcomeUnknownError as unknown:
            return await self._resolve(rewritten, action, attempt, unknown)

    async def _send_once(
        self, operation: str, params: dict[str, Any], action: VersionedAction
    ) -> WriteAnswer:
        try:
            response = await self._backend.call(operation, params)
        except BackendError as error:
            if error.code == "ConditionalCheckFailedException":
                return await self._condition_failed(params, action, error)
            raise
        versions = {} if action.kind == "Delete" else {0: action.next}
        return WriteAnswer(response, versions)

    async def _condition_failed(
        self, params: dict[str, Any], action: VersionedAction, error: BackendError
    ) -> WriteAnswer:
        key = await self._key_of(params)
        item = error.item
        if item is None and key:
            item = await self._read(action.table, key)  # some emulators do not return the old item
        verdict = after_condition_failed(action, item)
        if verdict == APPLIED:
            return self._applied(params, action, item)
        if verdict == CONFLICT:
            raise VersionConflictError(
                action.table, key, action.expected, version_of(item, action.spec.attribute), item
            ) from None
        if not action.wants_old_on_failure:
            error.item = None
        raise error

    async def _resolve(
        self,
        params: dict[str, Any],
        action: VersionedAction,
        attempt: Callable[[], Awaitable[WriteAnswer]],
        unknown: OutcomeUnknownError,
    ) -> WriteAnswer:
        key = await self._key_of(params)
        if not key:
            raise unknown
        for _ in range(RESOLUTION_ROUNDS):
            try:
                item = await self._read(action.table, key)
            except (BackendError, BackendUnavailableError) as failure:
                if is_retryable(failure):
                    continue  # the read ran out of its own retries: another round, in the deadline
                raise unknown from None
            except (DeadlineExceededError, CircuitOpenError):
                raise unknown from None
            verdict = after_unknown(action, item)
            self._count_resolution(action.table, verdict)
            if verdict == APPLIED:
                return self._applied(params, action, item)
            if verdict == CONFLICT:
                current = version_of(item, action.spec.attribute)
                raise VersionConflictError(action.table, key, action.expected, current, item) from None
            if verdict == UNKNOWN:
                raise unknown
            try:  # not applied: the same write again, with the same token
                return await attempt()
            except OutcomeUnknownError as again:
                unknown = again
            except (BackendUnavailableError, DeadlineExceededError, CircuitOpenError):
                raise unknown from None
        raise unknown

    def _applied(
        self, params: Mapping[str, Any], action: VersionedAction, item: Mapping[str, Any] | None
    ) -> WriteAnswer:
        """The answer to a write the gateway found applied by reading the item back."""
        versions = {} if action.kind == "Delete" else {0: action.next}
        wanted = params.get("ReturnValues", "NONE")
        if wanted == "NONE":
            return WriteAnswer({}, versions)
        if (
            wanted == "ALL_NEW"
            and item is not None
            and version_of(item, action.spec.attribute) == action.next
        ):
            return WriteAnswer({"Attributes": dict(item)}, versions)
        return WriteAnswer({}, versions, return_values_unknown=True)

    async def _key_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if "Key" in params:
            return dict(params["Key"])
        schema = await self._schemas.schema_of(str(params["TableName"]))
        if schema is None:
            return {}
        item = params["Item"]
        names = [schema.partition] + ([schema.sort] if schema.sort else [])
        return {n: item[n] for n in names if n in item}

    async def _read(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        response = await self._backend.call(
            "GetItem", {"TableName": table, "Key": dict(key), "ConsistentRead": True}
        )
        item = response.get("Item")
        return dict(item) if item is not None else None

    async def _transact(self, params: dict[str, Any], expected: Mapping[int, int | None]) -> WriteAnswer:
        entries = list(params["TransactItems"])
        actions: dict[int, VersionedAction] = {}
        for index, entry in enumerate(entries):
            ((kind, holder),) = entry.items()
            field = f"transact_items[{index}].{_snake(kind)}."
            table = str(holder["TableName"])
            if index not in expected:
                if kind in _TRANSACT_WRITES:
                    self._require_unversioned_allowed(table, f"{field}expected_version")
                continue
            spec = self._spec_for(table, f"{field}expected_version")
            # A fresh log: whether each item has one cannot be known, and a transaction needs none
            # (its ClientRequestToken makes its repeats safe).
            rewritten, actions[index] = rewrite(
                kind, holder, spec, expected[index], self._new_token(), field, fresh_log=True
            )
            entries[index] = {kind: rewritten}
        if not actions:
            return WriteAnswer(await self._backend.call("TransactWriteItems", params))
        try:
            response = await self._backend.call("TransactWriteItems", {**params, "TransactItems": entries})
        except BackendError as error:
            if error.code == "TransactionCanceledException":
                await self._cancelled(entries, actions, error)
            raise
        versions = {i: a.next for i, a in actions.items() if a.kind in ("Put", "Update")}
        return WriteAnswer(response, versions)

    async def _cancelled(
        self, entries: list[dict[str, Any]], actions: Mapping[int, VersionedAction], error: BackendError
    ) -> None:
        """Raises VersionConflictError for the first versioned action whose version did not match."""
        for index, reason in enumerate(error.cancellation_reasons):
            action = actions.get(index)
            if action is None or reason.get("Code") != "ConditionalCheckFailed":
                continue
            ((_, holder),) = entries[index].items()
            key = await self._key_of(holder)
            item = reason.get("Item")
            if item is None and key:
                item = await self._read(action.table, key)
            if after_condition_failed(action, item) == CONFLICT:
                current = version_of(item, action.spec.attribute)
                raise VersionConflictError(
                    action.table, key, action.expected, current, item, action_index=index
                ) from None
            if not action.wants_old_on_failure:
                reason.pop("Item", None)


def _no_log_yet(error: BackendError) -> bool:
    """DynamoDB's answer to setting an entry of a map attribute the item does not have."""
    return error.code == "ValidationException" and "document path" in error.message.lower()


def _snake(kind: str) -> str:
    return "condition_check" if kind == "ConditionCheck" else kind.lower()
