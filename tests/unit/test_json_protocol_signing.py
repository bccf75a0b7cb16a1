"""The lean backend's SigV4 signature equals botocore's for the same request and instant."""

from __future__ import annotations

import datetime

import pytest
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dynamo_gateway_server.backends.json_protocol import _Signer, decode_blobs, encode_default, host_header

NOW = datetime.datetime(2026, 11, 26, 12, 34, 56, tzinfo=datetime.UTC)


@pytest.mark.parametrize("token", [None, "session-token-value"])
@pytest.mark.parametrize("url", ["https://dynamodb.eu-west-1.example:443/", "http://127.0.0.1:8000/"])
def test_signature_matches_botocore(monkeypatch: pytest.MonkeyPatch, token: str | None, url: str) -> None:
    body = b'{"TableName":"orders","Key":{"pk":{"S":"a"}}}'
    ours = _Signer("eu-west-1", host_header(url)).headers(
        "DynamoDB_20120810.GetItem",
        body,
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token,
        now=NOW,
    )
    monkeypatch.setattr(auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"content-type": ours["content-type"], "x-amz-target": ours["x-amz-target"]},
    )
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    auth.SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


def test_host_header_leaves_out_default_ports() -> None:
    assert host_header("https://dynamodb.eu-west-1.example:443/") == "dynamodb.eu-west-1.example"
    assert host_header("https://dynamodb.eu-west-1.example") == "dynamodb.eu-west-1.example"
    assert host_header("http://127.0.0.1:8000/") == "127.0.0.1:8000"
    assert host_header("http://localhost:80") == "localhost"


def test_signing_key_is_cached_per_day_and_secret() -> None:
    signer = _Signer("us-east-1", "h")
    first = signer._signing_key("20261126", "s1")
    assert signer._signing_key("20261126", "s1") is first
    assert signer._signing_key("20261127", "s1") != first
    assert signer._signing_key("20261126", "s2") != first


def test_binary_values_go_out_as_base64_and_come_back_as_bytes() -> None:
    assert encode_default(b"\x00\xff") == "AP8="
    with pytest.raises(TypeError):
        encode_default(object())
    wire = {
        "Item": {
            "b": {"B": "AP8="},
            "bs": {"BS": ["AQ==", "Ag=="]},
            # An attribute named "B" in a map holds an attribute value, not base64.
            "m": {"M": {"B": {"S": "not base64"}}},
            "l": {"L": [{"B": "AQ=="}]},
        }
    }
    assert decode_blobs(wire) == {
        "Item": {
            "b": {"B": b"\x00\xff"},
            "bs": {"BS": [b"\x01", b"\x02"]},
            "m": {"M": {"B": {"S": "not base64"}}},
            "l": {"L": [{"B": b"\x01"}]},
        }
    }
