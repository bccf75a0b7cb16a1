"""Every RPC, fed requests derived from its proto descriptor, through a real gateway on each emulator.

Every answer must be OK or a taxonomy leaf (INVALID_ARGUMENT naming the field), never
INTERNAL, UNKNOWN or a hang. Derandomized: the same requests on every run. bench/fuzz.py
sends many more.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.driver import Caller, fuzz_method
from tests.fuzz.oracle import Tally
from tests.fuzz.strategies import METHODS

# Per method and emulator: with raw bytes, about 2,000 requests in all in make test.
EXAMPLES = 60


@pytest.mark.parametrize("method", list(METHODS))
async def test_fuzzed_requests_get_a_status_of_the_taxonomy(fuzz_target: FuzzTarget, method: str) -> None:
    tally = Tally()
    caller = Caller(fuzz_target.address)
    try:
        await asyncio.to_thread(
            fuzz_method, caller, method, EXAMPLES, tally, after_trouble=fuzz_target.after_trouble
        )
    finally:
        caller.close()
    assert tally.requests == EXAMPLES
    assert not tally.violations, tally.report()
