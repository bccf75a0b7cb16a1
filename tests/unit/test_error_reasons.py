"""errors.proto's ErrorReason enum and the taxonomy cannot drift: the enum has one value per
leaf, named by the documented rule, and each value's comment states the leaf's exact reason
string, gRPC code and retryability (what Go and Node callers read instead of our Python)."""

from __future__ import annotations

import pathlib
import re

from dynamo_gateway import taxonomy
from dynamo_gateway.v1 import errors_pb2

ERRORS_PROTO = pathlib.Path(__file__).resolve().parents[2] / "protos/dynamo_gateway/v1/errors.proto"

# One value: its comment's first line, any further comment lines, then the value itself.
VALUE = re.compile(
    r'^ *// "(?P<reason>[^"]+)": (?P<code>[A-Z_]+), (?P<retryable>not retryable|retryable)\.[^\n]*\n'
    r"(?: *//[^\n]*\n)*"
    r" *(?P<name>ERROR_REASON_\w+) = \d+;$",
    re.MULTILINE,
)


def _upper_snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def _value_name(leaf: taxonomy.Leaf) -> str:
    """The rule errors.proto states: ERROR_REASON_ and the reason in upper snake case."""
    return f"ERROR_REASON_{_upper_snake(leaf.category)}_{_upper_snake(leaf.name)}"


def test_the_enum_has_one_value_per_taxonomy_leaf() -> None:
    names = set(errors_pb2.ErrorReason.keys()) - {"ERROR_REASON_UNSPECIFIED"}
    assert names == {_value_name(leaf) for leaf in taxonomy.LEAVES}
    assert errors_pb2.ErrorReason.Value("ERROR_REASON_UNSPECIFIED") == 0


def test_each_value_documents_its_reason_code_and_retryability() -> None:
    documented = {
        match["name"]: (match["reason"], match["code"], match["retryable"] == "retryable")
        for match in VALUE.finditer(ERRORS_PROTO.read_text())
    }
    assert documented == {
        _value_name(leaf): (leaf.reason, leaf.grpc_code, leaf.retryable) for leaf in taxonomy.LEAVES
    }
