"""Composite key helpers: exact round trips, begins_with prefixes that match exactly, refusals."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynamo_gateway
from dynamo_gateway.keys import composite_key, key_prefix, parse_key

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any one character but the escape, from the whole of Unicode (surrogates included: Python text).
separators = st.characters(exclude_characters="\\")
texts = st.text(max_size=12)
# Few characters, escape and common separators among them, so collisions and escapes are frequent.
dense_separators = st.sampled_from("#|:\x00a")
dense_texts = st.text(alphabet="#|:\\a1\x00", max_size=6)


def dense_parts(min_size: int = 1) -> st.SearchStrategy[list[str]]:
    return st.lists(dense_texts, min_size=min_size, max_size=4)


@SETTINGS
@given(st.lists(texts, min_size=1, max_size=5), separators)
def test_any_parts_round_trip(parts: list[str], separator: str) -> None:
    assert parse_key(composite_key(*parts, separator=separator), separator=separator) == parts


@SETTINGS
@given(dense_parts(), dense_separators)
def test_parts_full_of_escapes_and_separators_round_trip(parts: list[str], separator: str) -> None:
    assert parse_key(composite_key(*parts, separator=separator), separator=separator) == parts


@SETTINGS
@given(st.text(alphabet="#|\\a", max_size=10), st.sampled_from("#|"))
def test_a_key_parses_from_one_text_only(text: str, separator: str) -> None:
    """Whatever parses rebuilds to the very same text: keys equal as parts are equal as keys."""
    try:
        parts = parse_key(text, separator=separator)
    except ValueError:
        return
    assert composite_key(*parts, separator=separator) == text


@SETTINGS
@given(dense_parts(), dense_parts(), dense_separators)
def test_prefix_of_leading_parts_is_a_string_prefix_of_every_longer_key(
    leading: list[str], more: list[str], separator: str
) -> None:
    key = composite_key(*leading, *more, separator=separator)
    assert key.startswith(key_prefix(*leading, separator=separator))


# Fewer still: unrelated parts often spell one another's prefix, which is where a wrong escape shows
# (unescaped backslashes make key_prefix('a\\') match composite_key('a#x')).
tiny_parts = st.lists(st.text(alphabet="#\\a", max_size=3), min_size=1, max_size=3)


@settings(SETTINGS, max_examples=1000)
@given(tiny_parts, tiny_parts, st.sampled_from("#a"))
def test_prefix_matches_only_keys_that_start_with_those_parts(
    leading: list[str], other: list[str], separator: str
) -> None:
    """begins_with(key_prefix(a)) holds exactly for keys whose parts extend a (USER#1 is not USER#10)."""
    matches = composite_key(*other, separator=separator).startswith(key_prefix(*leading, separator=separator))
    assert matches == (len(other) > len(leading) and other[: len(leading)] == leading)


@SETTINGS
@given(dense_parts(min_size=0), dense_texts, dense_texts, dense_parts(min_size=0), dense_separators)
def test_partial_last_part_is_a_prefix_too(
    leading: list[str], start: str, rest: str, more: list[str], separator: str
) -> None:
    """composite_key("ORDER", "2024-") is a prefix of every key whose second part starts "2024-"."""
    partial = composite_key(*leading, start, separator=separator)
    assert composite_key(*leading, start + rest, *more, separator=separator).startswith(partial)


plain_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="#\\"), max_size=8)


@SETTINGS
@given(st.lists(plain_texts, max_size=3), plain_texts, plain_texts)
def test_keys_sharing_all_but_the_last_part_sort_as_their_last_parts(
    leading: list[str], last: str, other_last: str
) -> None:
    """The order claimed in composite_key's docstring, in DynamoDB's terms (UTF-8 bytes)."""
    key = composite_key(*leading, last).encode()
    other_key = composite_key(*leading, other_last).encode()
    assert (key < other_key) == (last.encode() < other_last.encode())
    assert (key == other_key) == (last == other_last)


@SETTINGS
@given(st.lists(plain_texts, min_size=1, max_size=4))
def test_plain_parts_build_the_hand_written_key(parts: list[str]) -> None:
    assert composite_key(*parts) == "#".join(parts)


@pytest.mark.parametrize(
    ("parts", "separator", "key"),
    [
        (["USER", "42"], "#", "USER#42"),
        (["USER", "a#b"], "#", "USER#a\\#b"),
        (["USER", "a\\b"], "#", "USER#a\\\\b"),
        (["USER", "\\#"], "#", "USER#\\\\\\#"),
        (["", ""], "#", "#"),
        ([""], "#", ""),
        (["ORDER", "2024-05-01", "o-7"], "#", "ORDER#2024-05-01#o-7"),
        (["a#b", "c|d"], "|", "a#b|c\\|d"),
        (["tenant", "x•y"], "•", "tenant•x\\•y"),
    ],
)
def test_examples(parts: list[str], separator: str, key: str) -> None:
    assert composite_key(*parts, separator=separator) == key
    assert parse_key(key, separator=separator) == parts


def test_prefix_examples() -> None:
    assert key_prefix("USER") == "USER#"
    assert key_prefix("USER", "1") == "USER#1#"
    assert not composite_key("USER", "10", "PROFILE").startswith(key_prefix("USER", "1"))
    assert composite_key("USER", "1", "PROFILE").startswith(key_prefix("USER", "1"))
    assert key_prefix("USER", "a#b") == "USER#a\\#b#"
    assert key_prefix("a", separator="|") == "a|"


@pytest.mark.parametrize("separator", ["", "##", "\\"])
def test_separator_that_cannot_work_is_refused(separator: str) -> None:
    for call in (
        lambda: composite_key("a", separator=separator),
        lambda: key_prefix("a", separator=separator),
        lambda: parse_key("a", separator=separator),
    ):
        with pytest.raises(ValueError, match="separator"):
            call()


def test_no_parts_is_refused() -> None:
    """Zero parts would build "", which reads back as one empty part."""
    with pytest.raises(ValueError, match="at least one part"):
        composite_key()
    with pytest.raises(ValueError, match="at least one part"):
        key_prefix()


def test_a_part_that_is_not_text_is_refused_with_a_hint() -> None:
    number: Any = 42
    with pytest.raises(TypeError, match=r"part 1 is int 42: pass text, e\.g\. str\(n\), zero-padded"):
        composite_key("USER", number)


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        ("USER#a\\b", r"the backslash at 6 escapes 'b'"),
        ("USER#a\\", "ends with an unfinished escape"),
        ("\\", "ends with an unfinished escape"),
        ("a|b\\#", r"escapes '#', but only a backslash or the separator '\|'"),
    ],
)
def test_text_composite_key_never_builds_is_refused(key: str, complaint: str) -> None:
    separator = "|" if "|" in key else "#"
    with pytest.raises(ValueError, match=complaint):
        parse_key(key, separator=separator)


def test_parse_refuses_what_is_not_text() -> None:
    not_text: Any = b"USER#1"
    with pytest.raises(TypeError, match="a key is text, got bytes"):
        parse_key(not_text)


def test_exported_from_the_package() -> None:
    assert dynamo_gateway.composite_key is composite_key
    assert dynamo_gateway.key_prefix is key_prefix
    assert dynamo_gateway.parse_key is parse_key
    assert {"composite_key", "key_prefix", "parse_key"} <= set(dynamo_gateway.__all__)


def test_helpers_load_without_grpc() -> None:
    """Pure: a caller (or the server's pure modules) can build keys without loading gRPC."""
    script = (
        "import sys\n"
        "from dynamo_gateway import composite_key\n"
        "assert composite_key('USER', '42') == 'USER#42'\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'grpc'], 'grpc loaded'\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
