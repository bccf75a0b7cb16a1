"""Client values: Python values <-> AttributeValue messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamo_gateway import values
from dynamo_gateway.v1 import value_pb2
from dynamo_gateway_server import codec

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=15)
finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
python_numbers = st.one_of(st.integers(), finite_decimals)

scalars = st.one_of(
    texts,
    st.integers(),
    finite_decimals,
    st.binary(max_size=15),
    st.booleans(),
    st.none(),
    st.sets(texts, min_size=1, max_size=5),
    st.frozensets(python_numbers, min_size=1, max_size=5),
    st.sets(st.binary(max_size=8), min_size=1, max_size=5),
)

python_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(texts, children, max_size=4),
    ),
    max_leaves=20,
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def assert_same(original: Any, back: Any) -> None:
    """Equal as DynamoDB values: numbers compare numerically, sequences come back as lists."""
    if isinstance(original, bool):
        assert type(back) is bool
        assert back is original
    elif _is_number(original):
        assert _is_number(back), f"{back!r} is not an int or Decimal"
        assert back == original
        if isinstance(original, int):
            assert type(back) is int
    elif original is None:
        assert back is None
    elif isinstance(original, str | bytes):
        assert type(back) is type(original)
        assert back == original
    elif isinstance(original, list | tuple):
        assert type(back) is list
        assert len(back) == len(original)
        for a, b in zip(original, back, strict=True):
            assert_same(a, b)
    elif isinstance(original, dict):
        assert type(back) is dict
        assert back.keys() == original.keys()
        for key, value in original.items():
            assert_same(value, back[key])
    elif isinstance(original, set | frozenset):
        assert type(back) is set
        assert back == set(original)
        assert all(type(m) in (int, Decimal, str, bytes) for m in back)
        assert not any(isinstance(m, bool) for m in back)
    else:  # pragma: no cover - the strategy makes nothing else
        raise AssertionError(f"unexpected {original!r}")


@SETTINGS
@given(python_values)
def test_round_trip(value: Any) -> None:
    message = values.to_attribute_value(value)
    assert_same(value, values.from_attribute_value(message))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(texts, python_values, max_size=3))
def test_item_round_trip(item: dict[str, Any]) -> None:
    message = value_pb2.Item()
    values.fill_item(message.attributes, item)
    back = values.from_item(message.attributes)
    assert_same(item, back)


@SETTINGS
@given(finite_decimals)
def test_integral_number_text_comes_back_as_int(number: Decimal) -> None:
    back = values.from_attribute_value(values.to_attribute_value(number))
    assert back == number
    text = str(number)
    if text.lstrip("-").isdigit():
        assert type(back) is int
    else:
        assert type(back) is Decimal


# DynamoDB-sized numbers: at most 38 significant digits, well inside the exponent range.
dynamo_numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.decimals(min_value=-(10**20), max_value=10**20, places=12, allow_nan=False, allow_infinity=False),
)
dynamo_values = st.recursive(
    st.one_of(
        texts,
        dynamo_numbers,
        st.binary(max_size=10),
        st.booleans(),
        st.none(),
        st.sets(texts, min_size=1, max_size=4),
        st.sets(dynamo_numbers, min_size=1, max_size=4),
        st.sets(st.binary(max_size=6), min_size=1, max_size=4),
    ),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(texts, children, max_size=3)),
    max_leaves=15,
)


@SETTINGS
@given(dynamo_values)
def test_client_values_pass_server_validation_and_survive_it(value: Any) -> None:
    """What the client builds, the server codec accepts, and the server's answer decodes to the same value."""
    wire = codec.value_to_wire(values.to_attribute_value(value), "item.v")
    served = value_pb2.AttributeValue()
    codec.fill_value(served, wire)
    assert_same(value, values.from_attribute_value(served))


# ---------------------------------------------------------------- examples


def test_type_mapping() -> None:
    assert values.to_attribute_value("x") == value_pb2.AttributeValue(s="x")
    assert values.to_attribute_value("") == value_pb2.AttributeValue(s="")
    assert values.to_attribute_value(12) == value_pb2.AttributeValue(n="12")
    assert values.to_attribute_value(Decimal("-0.50")) == value_pb2.AttributeValue(n="-0.50")
    assert values.to_attribute_value(b"\x00") == value_pb2.AttributeValue(b=b"\x00")
    assert values.to_attribute_value(bytearray(b"ab")) == value_pb2.AttributeValue(b=b"ab")
    assert values.to_attribute_value(memoryview(b"cd")) == value_pb2.AttributeValue(b=b"cd")
    assert values.to_attribute_value(None) == value_pb2.AttributeValue(null=True)
    assert values.to_attribute_value([]).WhichOneof("value") == "l"
    assert values.to_attribute_value({}).WhichOneof("value") == "m"
    assert values.to_attribute_value({"b", "a"}) == value_pb2.AttributeValue(
        ss=value_pb2.StringSet(values=["a", "b"])
    )
    assert values.to_attribute_value(frozenset({3, Decimal("1.5")})) == value_pb2.AttributeValue(
        ns=value_pb2.NumberSet(values=["1.5", "3"])
    )


@pytest.mark.parametrize("flag", [True, False])
def test_bool_stays_bool(flag: bool) -> None:
    message = values.to_attribute_value(flag)
    assert message.WhichOneof("value") == "bool"
    assert message.bool is flag
    assert values.from_attribute_value(message) is flag
    nested = values.from_attribute_value(values.to_attribute_value({"f": [flag]}))
    assert nested["f"][0] is flag


def test_int_one_is_a_number_not_a_bool() -> None:
    message = values.to_attribute_value(1)
    assert message.WhichOneof("value") == "n"
    back = values.from_attribute_value(message)
    assert type(back) is int
    assert back == 1


@pytest.mark.parametrize("value", [0.5, 1.0, float("nan"), [1, 2.5], {"a": {"b": 0.1}}])
def test_float_rejected_with_a_hint(value: Any) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        values.to_attribute_value(value)


def test_float_in_a_set_rejected() -> None:
    with pytest.raises(TypeError):
        values.to_attribute_value({1.5, 2.5})


@pytest.mark.parametrize("empty", [set(), frozenset()])
def test_empty_set_rejected(empty: Any) -> None:
    with pytest.raises(ValueError, match="empty"):
        values.to_attribute_value(empty)
    with pytest.raises(ValueError, match="empty"):
        values.to_attribute_value({"nested": [empty]})


@pytest.mark.parametrize(
    "members",
    [{"a", 1}, {1, b"x"}, {"a", b"x"}, {True, 2}, {False}, {None, "a"}, {("t",)}],
    ids=["str+int", "int+bytes", "str+bytes", "bool+int", "bool-only", "none+str", "tuple"],
)
def test_mixed_or_unsupported_sets_rejected(members: set[Any]) -> None:
    with pytest.raises(TypeError, match="only strings, only numbers or only bytes"):
        values.to_attribute_value(members)


@pytest.mark.parametrize("text", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_decimals_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        values.to_attribute_value(Decimal(text))
    with pytest.raises(ValueError, match="finite"):
        values.to_attribute_value([Decimal(1), {"n": Decimal(text)}])


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_decimal_alone_in_a_set_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        values.to_attribute_value({Decimal(text)})


@pytest.mark.parametrize("text", ["Infinity", "-Infinity"])
def test_infinite_decimal_among_others_in_a_set_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        values.to_attribute_value({Decimal(text), Decimal(1), 2})


def test_nan_decimal_among_others_in_a_set_rejected_with_value_error() -> None:
    with pytest.raises(ValueError, match="finite"):
        values.to_attribute_value({Decimal("NaN"), Decimal(1)})


@pytest.mark.parametrize("key", [1, b"k", None, ("a",)])
def test_non_str_dict_key_rejected(key: Any) -> None:
    with pytest.raises(TypeError, match="attribute names are strings"):
        values.to_attribute_value({key: "v"})
    with pytest.raises(TypeError, match="attribute names are strings"):
        values.to_attribute_value({"outer": [{key: 1}]})
    with pytest.raises(TypeError):
        values.fill_item(value_pb2.Item().attributes, {key: 1})


@pytest.mark.parametrize("value", [object(), complex(1, 2), range(3), type])
def test_unsupported_types_rejected(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot be stored"):
        values.to_attribute_value(value)


def test_unset_value_rejected_on_decode() -> None:
    with pytest.raises(ValueError, match="no type"):
        values.from_attribute_value(value_pb2.AttributeValue())


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("7", 7, int),
        ("-7", -7, int),
        ("+7", 7, int),
        ("123456789012345678901234567890123456789", 123456789012345678901234567890123456789, int),
        ("1.50", Decimal("1.50"), Decimal),
        ("-0.001", Decimal("-0.001"), Decimal),
        ("1E+3", Decimal(1000), Decimal),
    ],
)
def test_number_decoding(text: str, expected: Any, kind: type) -> None:
    back = values.from_attribute_value(value_pb2.AttributeValue(n=text))
    assert type(back) is kind
    assert back == expected


def test_number_set_decoding() -> None:
    back = values.from_attribute_value(value_pb2.AttributeValue(ns=value_pb2.NumberSet(values=["1", "2.5"])))
    assert back == {1, Decimal("2.5")}
    assert {type(m) for m in back} == {int, Decimal}
