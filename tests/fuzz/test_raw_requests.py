"""Every RPC, fed bytes that are not (or barely) its request message, through a real gateway.

gRPC is given no deserializer for the guarded methods (interceptors/request_decoding.py
parses the bytes), so what protobuf cannot parse must come back INVALID_ARGUMENT naming
the request, not gRPC's own INTERNAL; what it can parse meets the usual checks.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.driver import Caller, fuzz_method_bytes
from tests.fuzz.oracle import Tally
from tests.fuzz.raw_bytes import raw_requests_for
from tests.fuzz.strategies import METHODS

EXAMPLES = 20


@pytest.mark.parametrize("method", list(METHODS))
async def test_raw_bytes_get_a_status_of_the_taxonomy(fuzz_target: FuzzTarget, method: str) -> None:
    tally = Tally()
    caller = Caller(fuzz_target.address)
    try:
        await asyncio.to_thread(
            fuzz_method_bytes,
            caller,
            method,
            EXAMPLES,
            tally,
            raw_requests_for(method),
            after_trouble=fuzz_target.after_trouble,
        )
    finally:
        caller.close()
    assert tally.requests == EXAMPLES
    assert not tally.violations, tally.report()


async def test_bytes_protobuf_cannot_parse_are_refused_naming_the_request(fuzz_target: FuzzTarget) -> None:
    caller = Caller(fuzz_target.address)
    try:
        # A length that runs past the end of the message. (In a thread: the gateway serves on this loop.)
        outcome = await asyncio.to_thread(caller.call, "GetItem", b"\x0a\xff\x01abc")
    finally:
        caller.close()
    assert (outcome.code, outcome.leaf, outcome.field) == (
        "INVALID_ARGUMENT",
        "Validation.InvalidParameter",
        "request",
    )
    assert not outcome.violation
