"""Reading and extending DynamoDB expressions without a full parser.

Enough of the grammar for the stages that look into update expressions: its
clauses (SET, REMOVE, ADD, DELETE, each at most once), the actions of a clause,
the top-level attributes it names, and a clause extended with the gateway's own
actions. SET, REMOVE, ADD and DELETE are reserved words, so they cannot be
attribute names and mark clause boundaries wherever they stand, except inside a
#name or :value placeholder (which may well be called :set). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

_CLAUSE = re.compile(r"(?<![\w:#.])(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r":[A-Za-z0-9_]+")
_IF_NOT_EXISTS = re.compile(r"if_not_exists\s*\([^,()]+,\s*(:[A-Za-z0-9_]+)\s*\)", re.IGNORECASE)
# A path's first element: a #name placeholder or a plain name not preceded by ':', '#', '.' or a
# word character (so neither a value placeholder, a nested element, nor the middle of a word).
_FIRST_ELEMENT = re.compile(r"(?<![\w:#.])(#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)(\s*\()?")
_NOT_NAMES = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"}


def top_level_split(text: str) -> Iterator[str]:
    """`text` split at the commas outside parentheses (a function's arguments stay together)."""
    depth, start = 0, 0
    for index, character in enumerate(text):
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
        elif character == "," and depth == 0:
            yield text[start:index]
            start = index + 1
    yield text[start:]


def clauses(expression: str) -> list[tuple[str, str]]:
    """(keyword in upper case, its actions' text) for each clause, in order."""
    pieces = _CLAUSE.split(expression)
    return [(k.upper(), body) for k, body in zip(pieces[1::2], pieces[2::2], strict=True)]


def set_values(expression: str, names: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(attribute, value placeholder) for each SET action that sets a top-level attribute to a value."""
    for keyword, clause in clauses(expression):
        if keyword != "SET":
            continue
        for action in top_level_split(clause):
            path, equals, value = action.partition("=")
            if not equals:
                continue
            path, value = path.strip(), value.strip()
            if _PLACEHOLDER.fullmatch(value):
                yield names.get(path, path), value
            elif found := _IF_NOT_EXISTS.fullmatch(value):
                yield names.get(path, path), found.group(1)


def top_level_attributes(expression: str, names: Mapping[str, str]) -> set[str]:
    """Every top-level attribute the expression names (as a path's first element), placeholders resolved."""
    found = set()
    for match in _FIRST_ELEMENT.finditer(expression):
        word, call = match.group(1), match.group(2)
        if call or word.upper() in _NOT_NAMES:
            continue  # a function, or a keyword
        found.add(names.get(word, word) if word.startswith("#") else word)
    return found


def with_actions(expression: str, sets: Sequence[str] = (), removes: Sequence[str] = ()) -> str:
    """`expression` with more SET and REMOVE actions, joined to its own clauses (each may appear once)."""
    extra = {"SET": list(sets), "REMOVE": list(removes)}
    rebuilt = []
    for keyword, body in clauses(expression):
        added = extra.pop(keyword, [])
        actions = ", ".join([body.strip(), *added]) if added else body.strip()
        rebuilt.append(f"{keyword} {actions}")
    rebuilt.extend(f"{keyword} {', '.join(actions)}" for keyword, actions in extra.items() if actions)
    return " ".join(rebuilt)


def unused_placeholder(base: str, taken: Mapping[str, object]) -> str:
    """`base`, or `base` with a number, whichever the caller's placeholders do not use yet."""
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}{number}"
    return candidate
