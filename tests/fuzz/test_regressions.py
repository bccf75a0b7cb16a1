"""The requests the fuzzers found answered wrongly (regressions.py), replayed on every emulator."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import message_factory, text_format

from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.driver import Caller
from tests.fuzz.oracle import Outcome
from tests.fuzz.regressions import REGRESSIONS, Call, Regression
from tests.fuzz.strategies import METHODS


def _serialized(call: Call) -> bytes:
    if call.raw:
        return bytes.fromhex(call.request)
    request_class = message_factory.GetMessageClass(METHODS[call.method].input_type)
    return text_format.Parse(call.request, request_class()).SerializeToString()


def _replay(address: str, regression: Regression) -> list[tuple[str, Outcome]]:
    caller = Caller(address)
    try:
        return [(call.method, caller.call(call.method, _serialized(call))) for call in regression.calls]
    finally:
        caller.close()


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda regression: regression.name)
async def test_a_request_once_answered_wrongly_gets_a_status_of_the_taxonomy(
    fuzz_target: FuzzTarget, regression: Regression
) -> None:
    outcomes = await asyncio.to_thread(_replay, fuzz_target.address, regression)
    wrong = [(method, outcome) for method, outcome in outcomes if outcome.violation]
    assert not wrong, f"{regression.name} (before the fix: {regression.found}): {wrong}"
