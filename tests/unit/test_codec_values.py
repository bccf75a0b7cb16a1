"""Server codec: AttributeValue messages <-> DynamoDB wire dicts, and the number/set validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamo_gateway.v1 import value_pb2
from dynamo_gateway_server import codec

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- strategies

# Protobuf strings must be valid UTF-8, so no lone surrogates; everything else goes.
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@st.composite
def _significand(draw: Any) -> str:
    """1 to 38 digits, first one non-zero (so the digit count is the significant digit count)."""
    first = draw(st.sampled_from("123456789"))
    rest = draw(st.text(alphabet="0123456789", max_size=37))
    return first + rest


@st.composite
def scientific_numbers(draw: Any) -> str:
    digits = draw(_significand())
    exponent = draw(st.integers(min_value=-130, max_value=125))
    sign = draw(st.sampled_from(["", "-", "+"]))
    marker = draw(st.sampled_from("eE"))
    exponent_sign = "+" if exponent >= 0 and draw(st.booleans()) else ""
    mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    text = f"{sign}{mantissa}{marker}{exponent_sign}{exponent}"
    assert Decimal(text).adjusted() == exponent  # the generator's own promise
    return text


@st.composite
def plain_numbers(draw: Any) -> str:
    digits = draw(_significand())
    sign = draw(st.sampled_from(["", "-"]))
    form = draw(st.sampled_from(["int", "point", "small", "trailing_zeros"]))
    if form == "int":
        return sign + digits
    if form == "point":
        cut = draw(st.integers(min_value=0, max_value=len(digits)))
        return f"{sign}{digits[:cut]}.{digits[cut:]}"
    if form == "small":
        zeros = draw(st.integers(min_value=0, max_value=120))
        return f"{sign}0.{'0' * zeros}{digits}"
    # Trailing zeros are not significant digits: 38 digits + 50 zeros is still fine.
    zeros = draw(st.integers(min_value=0, max_value=80))
    return f"{sign}{digits}{'0' * zeros}"


BOUNDARY_NUMBERS = [
    "0",
    "-0",
    "0.0",
    "0E+999",
    "1E-130",
    "-1E-130",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "99999999999999999999999999999999999999",
    "1" * 38,
    "100000000000000000000000000000000000000000",
]

numbers = st.one_of(scientific_numbers(), plain_numbers(), st.sampled_from(BOUNDARY_NUMBERS))


def _av(**kwargs: Any) -> value_pb2.AttributeValue:
    return value_pb2.AttributeValue(**kwargs)


def _map(fields: dict[str, value_pb2.AttributeValue]) -> value_pb2.AttributeValue:
    value = value_pb2.AttributeValue()
    value.m.SetInParent()
    for name, field_value in fields.items():
        value.m.fields[name].CopyFrom(field_value)
    return value


def _list(values: list[value_pb2.AttributeValue]) -> value_pb2.AttributeValue:
    value = value_pb2.AttributeValue()
    value.l.SetInParent()
    value.l.values.extend(values)
    return value


scalars = st.one_of(
    texts.map(lambda s: _av(s=s)),
    numbers.map(lambda n: _av(n=n)),
    st.binary(max_size=20).map(lambda b: _av(b=b)),
    st.booleans().map(lambda b: _av(bool=b)),
    st.just(None).map(lambda _: _av(null=True)),
    st.lists(texts, min_size=1, max_size=5, unique=True).map(lambda v: _av(ss=value_pb2.StringSet(values=v))),
    st.lists(numbers, min_size=1, max_size=5, unique_by=Decimal).map(
        lambda v: _av(ns=value_pb2.NumberSet(values=v))
    ),
    st.lists(st.binary(max_size=10), min_size=1, max_size=5, unique=True).map(
        lambda v: _av(bs=value_pb2.BinarySet(values=v))
    ),
)

attribute_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(_list),
        st.dictionaries(texts, children, max_size=4).map(_map),
    ),
    max_leaves=25,
)


def _round_trip(value: value_pb2.AttributeValue) -> value_pb2.AttributeValue:
    wire = codec.value_to_wire(value, "f")
    back = value_pb2.AttributeValue()
    codec.fill_value(back, wire)
    return back


# ---------------------------------------------------------------- properties


@SETTINGS
@given(attribute_values)
def test_value_round_trips_through_the_wire_shape(value: value_pb2.AttributeValue) -> None:
    back = _round_trip(value)
    assert back == value
    assert back.SerializeToString(deterministic=True) == value.SerializeToString(deterministic=True)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(texts, attribute_values, max_size=3))
def test_item_round_trips_through_the_wire_shape(item: dict[str, value_pb2.AttributeValue]) -> None:
    message = value_pb2.Item()
    for name, value in item.items():
        message.attributes[name].CopyFrom(value)
    wire = codec.item_to_wire(message.attributes, "item")
    assert set(wire) == set(item)
    back = value_pb2.Item()
    codec.fill_item(back.attributes, wire)
    assert back == message


@SETTINGS
@given(numbers)
def test_valid_numbers_pass_unchanged(text: str) -> None:
    assert codec.value_to_wire(_av(n=text), "f") == {"N": text}


@SETTINGS
@given(_significand(), st.integers(min_value=-130, max_value=125))
def test_more_than_38_significant_digits_rejected_anywhere_in_range(digits: str, exponent: int) -> None:
    # Pad to 39..45 significant digits, ending in a non-zero digit so none are trailing zeros.
    long = (digits * 45)[:38] + "5" + "7" * (len(digits) % 7)
    text = f"{long[0]}.{long[1:]}E{exponent}"
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.value_to_wire(_av(n=text), "item.x")
    assert caught.value.field == "item.x"
    assert caught.value.description == "Attempting to store more than 38 significant digits in a Number"
    assert caught.value.dynamodb_message == caught.value.description


@SETTINGS
@given(st.sampled_from(["s", "b", "n"]), st.data())
def test_number_wire_values_are_strings_never_floats(kind: str, data: st.DataObject) -> None:
    value = (
        _av(n=data.draw(numbers))
        if kind == "n"
        else _av(**{kind: data.draw(texts if kind == "s" else st.binary())})
    )
    wire = codec.value_to_wire(value, "f")
    ((tag, payload),) = wire.items()
    assert tag == kind.upper()
    assert type(payload) is (bytes if kind == "b" else str)


# ---------------------------------------------------------------- numbers: examples


def test_38_significant_digits_accepted() -> None:
    text = "1234567890123456789012345678901234567.8"  # 38 digits
    assert codec.check_number(text, "f") == text


def test_39_significant_digits_rejected_with_the_nested_field_path() -> None:
    request_item = value_pb2.Item()
    inner = request_item.attributes["a"].m.fields["b"]
    inner.l.values.add(s="x")
    inner.l.values.add(bool=True)
    inner.l.values.add(n="1" * 39)
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.item_to_wire(request_item.attributes, "item")
    assert caught.value.field == "item.a.b[2]"
    assert caught.value.description == "Attempting to store more than 38 significant digits in a Number"
    assert str(caught.value).startswith("item.a.b[2]: ")


def test_39_digit_integer_with_trailing_zero_is_still_too_precise() -> None:
    with pytest.raises(codec.InvalidRequestError):
        codec.check_number("1234567890123456789012345678901234567891", "f")  # 40 digits, ends in 1


@pytest.mark.parametrize(
    "text",
    [
        "100000000000000000000000000000000000000000",
        "1000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0.0000000000000000000000000000000000000000000000000000000000000000000000000001",
        "1.0000000000000000000000000000000000000000000000000000",
        "-12345678901234567890123456789012345678000000000",
    ],
)
def test_zeros_around_the_significant_digits_do_not_count(text: str) -> None:
    assert codec.check_number(text, "f") == text


@pytest.mark.parametrize(
    "text",
    [
        "1E-130",
        "-1E-130",
        "1.5E-130",
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999E+125",
        "9" * 38 + "0" * 88,
    ],
)
def test_range_limits_accepted(text: str) -> None:
    assert Decimal(text).is_finite()
    assert codec.check_number(text, "f") == text


@pytest.mark.parametrize(
    "text",
    ["1E-131", "-1E-131", "9.9E-131", "1E+126", "-1E+126", "10E+125", "0.1E-130", "1" + "0" * 126],
)
def test_out_of_range_rejected(text: str) -> None:
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.check_number(text, "item.n")
    assert caught.value.field == "item.n"
    assert "supported range" in caught.value.description
    assert caught.value.description.startswith("Number underflow" if "E-" in text else "Number overflow")


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1x",
        " 1",
        "1 ",
        "1\n",
        "",
        "-",
        ".",
        "1e",
        "e5",
        "1_000",
        "0x10",
        "1.2.3",
        "--1",
        "1E5.5",
    ],
)
def test_non_numbers_rejected(text: str) -> None:
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.value_to_wire(_av(n=text), "item.price")
    assert caught.value.field == "item.price"
    # DynamoDB's words, quoting the text (but for an empty one).
    assert caught.value.description == (
        f"The parameter cannot be converted to a numeric value: {text}"
        if text
        else "The parameter cannot be converted to a numeric value"
    )


# ---------------------------------------------------------------- sets


@pytest.mark.parametrize("kind", ["ss", "ns", "bs"])
def test_empty_sets_rejected(kind: str) -> None:
    value = value_pb2.AttributeValue()
    getattr(value, kind).SetInParent()
    assert value.WhichOneof("value") == kind
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.value_to_wire(value, "item.tags")
    assert caught.value.field == "item.tags"
    assert caught.value.description.startswith("One or more parameter values were invalid: ")
    assert caught.value.description.endswith(("set  may not be empty", "sets should not be empty"))


@pytest.mark.parametrize(
    "value",
    [
        _av(ss=value_pb2.StringSet(values=["a", "b", "a"])),
        _av(ns=value_pb2.NumberSet(values=["1", "2", "1"])),
        _av(ns=value_pb2.NumberSet(values=["1", "1.0"])),
        _av(ns=value_pb2.NumberSet(values=["10", "1E+1"])),
        _av(ns=value_pb2.NumberSet(values=["0", "-0"])),
        _av(bs=value_pb2.BinarySet(values=[b"\x00", b"\x01", b"\x00"])),
    ],
    ids=["ss", "ns", "ns-1-and-1.0", "ns-10-and-1E+1", "ns-zero-signs", "bs"],
)
def test_duplicate_set_members_rejected(value: value_pb2.AttributeValue) -> None:
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.value_to_wire(value, "item.tags")
    assert caught.value.field == "item.tags"
    assert "contains duplicates" in caught.value.description


def test_distinct_but_similar_set_members_accepted() -> None:
    assert codec.value_to_wire(_av(ss=value_pb2.StringSet(values=["a", "A", "a "])), "f") == {
        "SS": ["a", "A", "a "]
    }
    assert codec.value_to_wire(_av(ns=value_pb2.NumberSet(values=["1", "1.01", "-1"])), "f") == {
        "NS": ["1", "1.01", "-1"]
    }
    assert codec.value_to_wire(_av(bs=value_pb2.BinarySet(values=[b"a", b"a\x00"])), "f") == {
        "BS": [b"a", b"a\x00"]
    }


def test_bad_number_set_member_named_by_index() -> None:
    item = value_pb2.Item()
    item.attributes["scores"].ns.values.extend(["1", "2", "NaN"])
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.item_to_wire(item.attributes, "item")
    assert caught.value.field == "item.scores[2]"


# ---------------------------------------------------------------- other types


def test_null_false_rejected() -> None:
    value = _av(null=False)
    assert value.WhichOneof("value") == "null"
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.value_to_wire(value, "item.gone")
    assert caught.value.field == "item.gone"


def test_null_true_and_bool_false_accepted() -> None:
    assert codec.value_to_wire(_av(null=True), "f") == {"NULL": True}
    assert codec.value_to_wire(_av(bool=False), "f") == {"BOOL": False}


def test_unset_oneof_rejected() -> None:
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.value_to_wire(value_pb2.AttributeValue(), "item.x")
    assert caught.value.field == "item.x"
    assert caught.value.description == (
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )


def test_unset_value_deep_inside_names_its_path() -> None:
    item = value_pb2.Item()
    outer = item.attributes["orders"]
    outer.l.values.add(s="first")
    second = outer.l.values.add()
    second.m.fields["lines"].l.values.add(n="1")
    second.m.fields["lines"].l.values.add()  # unset
    with pytest.raises(codec.InvalidRequestError) as caught:
        codec.item_to_wire(item.attributes, "item")
    assert caught.value.field == "item.orders[1].lines[1]"


def test_empty_string_and_empty_binary_are_values() -> None:
    assert codec.value_to_wire(_av(s=""), "f") == {"S": ""}
    assert codec.value_to_wire(_av(b=b""), "f") == {"B": b""}


def test_empty_map_and_list_survive_the_round_trip() -> None:
    empty_map = _map({})
    empty_list = _list([])
    assert codec.value_to_wire(empty_map, "f") == {"M": {}}
    assert codec.value_to_wire(empty_list, "f") == {"L": []}
    assert _round_trip(empty_map).WhichOneof("value") == "m"
    assert _round_trip(empty_list).WhichOneof("value") == "l"


def test_nested_wire_shape() -> None:
    value = _map(
        {
            "name": _av(s="ü"),
            "tags": _av(ss=value_pb2.StringSet(values=["x"])),
            "parts": _list([_av(n="1.5"), _av(b=b"\x01"), _map({"deep": _av(null=True)})]),
        }
    )
    assert codec.value_to_wire(value, "f") == {
        "M": {
            "name": {"S": "ü"},
            "tags": {"SS": ["x"]},
            "parts": {"L": [{"N": "1.5"}, {"B": b"\x01"}, {"M": {"deep": {"NULL": True}}}]},
        }
    }


def test_fill_value_rejects_unknown_wire_types() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB attribute type"):
        codec.fill_value(value_pb2.AttributeValue(), {"X": 1})


@pytest.mark.parametrize("text", ["\u0661", "\uff11\uff12", "1.\u0665"])
def test_digits_of_other_scripts_rejected(text: str) -> None:
    with pytest.raises(codec.InvalidRequestError, match="cannot be converted to a numeric value"):
        codec.check_number(text, "item.n")
