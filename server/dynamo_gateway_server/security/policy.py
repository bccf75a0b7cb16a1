"""The authorization policy: which caller may run which operations on which tables and indexes.

A declarative YAML file (examples/policy.yaml) of allow rules:

    rules:
      - callers: ["jwt:system:serviceaccount:shop:*"]   # glob patterns over the caller's names
        tables: ["orders", "orders-*"]                  # glob patterns over table names (ARNs as sent)
        indexes: ["gsi1"]                               # optional: indexes Query/Scan may use ("*" if left out, [] for none)
        access: read-write                              # read-only | read-write, or `operations: [GetItem, ...]`

Once a policy is configured, anything no rule allows is denied (an empty list of
rules denies everything). A request is checked for every table it touches, every
table of a batch or a transaction included, before any of it reaches DynamoDB,
and only against the policy, so a denial reads the same whether the table exists
or not. Owns parsing the file and the decision; must not import gRPC or the backends.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .. import request_shape
from .files import SecurityConfigError, WatchedFile, first_line
from .identity import Identity

READ_OPERATIONS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "ParallelScan", "TransactGetItems", "DescribeTable"}
)
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
OPERATIONS = READ_OPERATIONS | WRITE_OPERATIONS
ACCESS_LEVELS = {"read-only": READ_OPERATIONS, "read-write": OPERATIONS}
_RULE_KEYS = frozenset({"callers", "tables", "indexes", "access", "operations", "description"})


@dataclass(frozen=True)
class Access:
    """One thing a request does: an operation on a table, through an index or not."""

    operation: str
    table: str
    index: str | None = None


@dataclass(frozen=True)
class Rule:
    callers: tuple[str, ...]
    tables: tuple[str, ...]
    indexes: tuple[str, ...]
    operations: frozenset[str]

    def allows(self, identity: Identity, access: Access) -> bool:
        if access.operation not in self.operations:
            return False
        if not _any_match((access.table,), self.tables):
            return False
        if access.index is not None and not _any_match((access.index,), self.indexes):
            return False
        return _any_match(identity.names, self.callers)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]

    def allows(self, identity: Identity, access: Access) -> bool:
        return any(rule.allows(identity, access) for rule in self.rules)


def _any_match(names: Iterable[str], patterns: Iterable[str]) -> bool:
    # Case-sensitive like DynamoDB's table names; fnmatch's platform-dependent folding would not be.
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


class PermissionDenied(Exception):
    """The policy does not allow `access` for the caller; the message names the table and operation."""

    def __init__(self, identity: Identity, access: Access) -> None:
        where = f"table {access.table!r}"
        if access.index is not None:
            where = f"index {access.index!r} of {where}"
        super().__init__(f"caller {identity.principal!r} may not run {access.operation} on {where}")
        self.identity = identity
        self.access = access


# ---------------------------------------------------------------- what a request touches


def accesses_of(operation: str, params: Mapping[str, Any]) -> list[Access]:
    """Every table (and index) a DynamoDB-shaped request touches, in request order, once each."""
    found = {
        Access(operation, part.table, part.index_name): None
        for part in request_shape.walk(operation, params)
        if part.kind == request_shape.TABLE
    }
    return list(found)


class Authorizer:
    """Checks requests against the policy in force; without a policy every request is allowed."""

    def __init__(self, policy: WatchedFile[Policy] | None = None) -> None:
        self.policy = policy

    def check(self, identity: Identity, operation: str, params: Mapping[str, Any]) -> None:
        if self.policy is None:
            return
        policy = self.policy.value  # one version for the whole request, even if a reload lands meanwhile
        for access in accesses_of(operation, params):
            if not policy.allows(identity, access):
                raise PermissionDenied(identity, access)


# ---------------------------------------------------------------- the file


def parse_policy(data: bytes, path: str = "") -> Policy:
    where = f"policy file {path}".rstrip()
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as error:
        raise SecurityConfigError(f"{where}: not YAML ({first_line(error)})") from None
    if not isinstance(document, dict) or set(document) - {"rules", "version"} or "rules" not in document:
        raise SecurityConfigError(f"{where}: expected a mapping with `rules` (and optionally `version`)")
    rules = [] if document["rules"] is None else document["rules"]
    if not isinstance(rules, list):
        raise SecurityConfigError(f"{where}: `rules` must be a list")
    return Policy(tuple(_rule(rule, f"{where}: rules[{index}]") for index, rule in enumerate(rules)))


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise SecurityConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise SecurityConfigError(f"{where}: unknown keys {unknown} (allowed: {sorted(_RULE_KEYS)})")
    callers = _patterns(raw, "callers", where, required=True)
    tables = _patterns(raw, "tables", where, required=True)
    indexes = _patterns(raw, "indexes", where, required=False) if "indexes" in raw else ("*",)
    if ("access" in raw) == ("operations" in raw):
        raise SecurityConfigError(f"{where}: give exactly one of `access` and `operations`")
    if "access" in raw:
        if raw["access"] not in ACCESS_LEVELS:
            raise SecurityConfigError(f"{where}.access: one of {', '.join(ACCESS_LEVELS)}")
        operations = ACCESS_LEVELS[raw["access"]]
    else:
        names = _patterns(raw, "operations", where, required=True)
        unknown_operations = sorted(set(names) - OPERATIONS - {"*"})
        if unknown_operations:
            raise SecurityConfigError(
                f"{where}.operations: unknown {unknown_operations} (known: {', '.join(sorted(OPERATIONS))}, or *)"
            )
        operations = OPERATIONS if "*" in names else frozenset(names)
    return Rule(callers, tables, indexes, operations)


def _patterns(raw: dict[str, Any], key: str, where: str, required: bool) -> tuple[str, ...]:
    value = raw.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise SecurityConfigError(f"{where}.{key}: a list of non-empty strings")
    if required and not value:
        raise SecurityConfigError(f"{where}.{key}: at least one pattern")
    return tuple(value)
