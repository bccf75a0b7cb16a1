"""Update expressions: their clauses, the attributes they name, and the gateway's actions joined in.

set_values() is covered with the TTL rules (test_ttl.py).
"""

from __future__ import annotations

import pytest

from dynamo_gateway_server.update_expression import (
    clauses,
    top_level_attributes,
    top_level_split,
    with_actions,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("", []),
        ("SET a = :v", [("SET", " a = :v")]),
        # Keywords in any case, upper-cased; each clause's text kept as written.
        (
            "set a = :v remove b add n :one delete s :gone",
            [("SET", " a = :v "), ("REMOVE", " b "), ("ADD", " n :one "), ("DELETE", " s :gone")],
        ),
        # Inside placeholders, nested names and longer words the keywords are no boundary.
        ("SET #set = :remove, a.add = :delete", [("SET", " #set = :remove, a.add = :delete")]),
        ("SET settings = :v, reset = :w", [("SET", " settings = :v, reset = :w")]),
    ],
)
def test_clauses(expression: str, expected: list[tuple[str, str]]) -> None:
    assert clauses(expression) == expected


def test_top_level_split_keeps_a_functions_arguments_together() -> None:
    assert list(top_level_split(" l = list_append(l, :x), n = if_not_exists(n, :z)")) == [
        " l = list_append(l, :x)",
        " n = if_not_exists(n, :z)",
    ]


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        ("", {}, set()),
        ("SET a = :v", {}, {"a"}),
        # #name placeholders resolve to the attribute they stand for.
        ("SET #n = :v REMOVE #gone", {"#n": "name", "#gone": "old"}, {"name", "old"}),
        # A nested path names only its first element.
        ("SET a.b.c = :v, d[0][1] = :w, e[2].f = :x", {}, {"a", "d", "e"}),
        ("SET #a.#b = :v", {"#a": "outer", "#b": "inner"}, {"outer"}),
        # Function names are not attributes; their operands are.
        ("SET n = if_not_exists(start, :zero) + :one, l = list_append(:head, l)", {}, {"n", "start", "l"}),
        ("SET n = size (s)", {}, {"n", "s"}),
        # Keywords in any case, and :value placeholders (however they are spelled), are not attributes.
        ("set a = :b remove c add d :e_1 delete f :set", {}, {"a", "c", "d", "f"}),
    ],
)
def test_top_level_attributes(expression: str, names: dict[str, str], expected: set[str]) -> None:
    assert top_level_attributes(expression, names) == expected


@pytest.mark.parametrize(
    ("expression", "sets", "removes", "expected"),
    [
        # Joined to the caller's own clause: DynamoDB allows each clause once.
        ("SET a = :a", ["v = :n"], [], "SET a = :a, v = :n"),
        ("REMOVE old", [], ["log.#s"], "REMOVE old, log.#s"),
        ("REMOVE old SET a = :a", ["v = :n"], ["x"], "REMOVE old, x SET a = :a, v = :n"),
        # Lower-case keywords are still the same clause.
        ("set a = :a remove b", ["v = :n"], ["x"], "SET a = :a, v = :n REMOVE b, x"),
        # A :set placeholder is not a second clause.
        ("SET a = :set", ["v = :n"], [], "SET a = :set, v = :n"),
        # Missing clauses are added; ADD and DELETE are kept as they are.
        ("ADD n :one", ["v = :n"], ["x"], "ADD n :one SET v = :n REMOVE x"),
        (
            "SET a = :a ADD n :one DELETE s :gone",
            ["v = :n"],
            [],
            "SET a = :a, v = :n ADD n :one DELETE s :gone",
        ),
        ("", ["v = :n", "w = :m"], ["x"], "SET v = :n, w = :m REMOVE x"),
        ("", [], [], ""),
    ],
)
def test_with_actions(expression: str, sets: list[str], removes: list[str], expected: str) -> None:
    joined = with_actions(expression, sets, removes)
    assert joined == expected
    keywords = [keyword for keyword, _ in clauses(joined)]
    assert len(keywords) == len(set(keywords))
