"""Requests the fuzzers found answered wrongly, kept to be replayed on every backend (test_regressions.py).

Each case is a few calls in order, as text-format protos (or hex, for raw bytes): the
first ones set the stage (an item with an odd version), and every answer, theirs
included, must pass the oracle. Items use keys of their own so cases do not meet.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    method: str
    request: str
    """A text-format request; with `raw`, the request's bytes in hex."""
    raw: bool = False


@dataclass(frozen=True)
class Regression:
    name: str
    found: str
    """What the gateway answered before the fix."""
    calls: tuple[Call, ...]


_LONG_NAME = "a" * 70_000

REGRESSIONS = (
    Regression(
        "a 70 KB attribute name in a key, with a value the gateway refuses",
        "no status at all: the refusal named the field (key.<name>) three times, and the client "
        "dropped trailers past 16 KB (RESOURCE_EXHAUSTED 'received metadata size exceeds hard limit')",
        (
            Call(
                "GetItem",
                f'table_name: "fuzz-app" key {{ key: "pk" value {{ s: "a" }} }} '
                f'key {{ key: "{_LONG_NAME}" value {{ ns {{ }} }} }}',
            ),
        ),
    ),
    Regression(
        "a 70 KB index name",
        "no status at all, as above (the index name quoted in DynamoDB's refusal)",
        (
            Call(
                "Query",
                f'table_name: "fuzz-app" index_name: "{_LONG_NAME}" key_condition_expression: "pk = :v" '
                'expression_attribute_values { key: ":v" value { s: "a" } }',
            ),
        ),
    ),
    Regression(
        "a versioned write after the last int64 version",
        "INTERNAL after the write was applied: the next version (2^63) does not fit the response's int64",
        (
            Call(
                "PutItem",
                'table_name: "fuzz-app" item { key: "pk" value { s: "regression-last-version" } } '
                'item { key: "sk" value { s: "a" } } item { key: "version" value { n: "9223372036854775807" } }',
            ),
            Call(
                "UpdateItem",
                'table_name: "fuzz-app" key { key: "pk" value { s: "regression-last-version" } } '
                'key { key: "sk" value { s: "a" } } update_expression: "SET a = :a" '
                'expression_attribute_values { key: ":a" value { s: "x" } } '
                "expected_version { version: 9223372036854775807 }",
            ),
        ),
    ),
    Regression(
        "a version conflict with an item whose version is past int64",
        "UNKNOWN with the Python exception's text: rendering the VersionConflict detail raised",
        (
            Call(
                "PutItem",
                'table_name: "fuzz-app" item { key: "pk" value { s: "regression-huge-version" } } '
                'item { key: "sk" value { s: "a" } } item { key: "version" value { n: "1e100" } }',
            ),
            Call(
                "UpdateItem",
                'table_name: "fuzz-app" key { key: "pk" value { s: "regression-huge-version" } } '
                'key { key: "sk" value { s: "a" } } update_expression: "SET a = :a" '
                'expression_attribute_values { key: ":a" value { s: "x" } } expected_version { version: 1 }',
            ),
        ),
    ),
    Regression(
        "an astral character where an expression starts",
        "on dynalite, UNKNOWN: its message quotes half of a surrogate pair, which protobuf cannot carry, "
        "so rendering the status raised",
        (
            Call("Query", 'table_name: "fuzz-app" key_condition_expression: "\\362\\225\\264\\217"'),
            Call("Scan", 'table_name: "fuzz-plain" projection_expression: "\\363\\231\\243\\204p"'),
        ),
    ),
)
