"""Byte strings to send as a method's serialized request: random, mutated, and hand-made wire format.

Random bytes mostly fail to parse; mutated serializations of well-formed requests
(a byte flipped, cut short, spliced) often parse into something odd, and the
hand-made ones reach the corners protobuf's own encoder never writes: a field
with the wrong wire type, a length past the end, a string that is not UTF-8, a
varint of eleven bytes, AttributeValues nested past protobuf's 100 levels.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.fuzz.strategies import requests_for


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as protobuf writes them: ten bytes
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def nested_attribute_value(levels: int) -> bytes:
    """An AttributeValue: M {fields {"a": M {fields {"a": ... S "x"}}}}, `levels` maps deep."""
    value = length_delimited(1, b"x")  # s
    for _ in range(levels):
        entry = length_delimited(1, b"a") + length_delimited(2, value)  # MapValue.FieldsEntry
        value = length_delimited(7, length_delimited(1, entry))  # AttributeValue.m
    return value


def deeply_nested_key(levels: int) -> bytes:
    """A request whose field 2 (key or item in the item RPCs) holds {"pk": <nested_attribute_value>}."""
    entry = length_delimited(1, b"pk") + length_delimited(2, nested_attribute_value(levels))
    return length_delimited(1, b"fuzz-hash") + length_delimited(2, entry)


_field_numbers = st.integers(1, 16) | st.integers(0, 2**29 - 1)
hand_made_fields = st.one_of(
    st.builds(lambda n, v: tag(n, 0) + varint(v), _field_numbers, st.integers(-(2**63), 2**64 - 1)),
    st.builds(lambda n, p: length_delimited(n, p), _field_numbers, st.binary(max_size=16)),
    # Not UTF-8, in what may be a string field.
    st.builds(lambda n: length_delimited(n, b"\xff\xfe\xc0"), _field_numbers),
    # A length that runs past the end.
    st.builds(lambda n: tag(n, 2) + varint(1000) + b"abc", _field_numbers),
    # Fixed-width, group and unknown wire types.
    st.builds(lambda n, w: tag(n, w) + b"\x00" * 8, _field_numbers, st.sampled_from([1, 3, 4, 5, 6, 7])),
    # A varint too long to end.
    st.builds(lambda n: tag(n, 0) + b"\xff" * 11, _field_numbers),
)


@st.composite
def _mutated(draw: Any, valid: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "cut", "insert", "splice", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if how == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif how == "splice":
            data[at:at] = draw(hand_made_fields)
        else:
            data += data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def raw_requests_for(method: str) -> st.SearchStrategy[bytes]:
    valid = requests_for(method).map(lambda request: request.SerializeToString())
    return st.one_of(
        st.binary(max_size=64),
        _mutated(valid),
        _mutated(valid),
        st.lists(hand_made_fields, min_size=1, max_size=5).map(b"".join),
        st.builds(deeply_nested_key, st.sampled_from([31, 32, 33, 49, 50, 98, 99, 100, 200])),
    )
