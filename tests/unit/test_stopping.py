"""ShutdownGate: when the gateway may stop listening, what it holds until then, and how long
refused callers are asked to wait."""

from __future__ import annotations

import asyncio
import time

from dynamo_gateway_server.resilience import response_margin_s
from dynamo_gateway_server.stopping import LONGEST_S, RETRY_MARGIN_S, ShutdownGate


async def test_an_idle_gateway_stops_after_the_quiet_spell() -> None:
    gate = ShutdownGate()
    await gate.close(quiet_s=0.01, longest_s=5)
    assert gate.closed and gate.refused == 0


async def test_refusals_keep_the_gate_closed_until_they_stop() -> None:
    gate = ShutdownGate()
    last_refusal = 0.0

    async def callers() -> None:
        nonlocal last_refusal
        for _ in range(10):
            await asyncio.sleep(0.005)
            gate.refuse()
            last_refusal = time.monotonic()

    refusing = asyncio.ensure_future(callers())
    await gate.close(quiet_s=0.03, longest_s=5)
    assert refusing.done() and gate.refused == 10
    assert time.monotonic() - last_refusal >= 0.03


async def test_a_loop_running_late_is_not_a_quiet_spell() -> None:
    # Calls may wait unseen in gRPC's queue while the loop is busy: the quiet spell starts after.
    gate = ShutdownGate()
    unblocked = 0.0

    async def busy() -> None:
        nonlocal unblocked
        await asyncio.sleep(0.02)
        time.sleep(0.2)  # noqa: ASYNC251 (the loop must do nothing else meanwhile)
        unblocked = time.monotonic()

    blocking = asyncio.ensure_future(busy())
    await gate.close(quiet_s=0.05, longest_s=5)
    assert blocking.done()
    assert time.monotonic() - unblocked >= 0.05


async def test_callers_that_never_stop_do_not_hold_the_stop_forever() -> None:
    gate = ShutdownGate()

    async def callers() -> None:
        while True:
            gate.refuse()
            await asyncio.sleep(0.005)

    refusing = asyncio.ensure_future(callers())
    started = time.monotonic()
    await gate.close(quiet_s=0.05, longest_s=0.1)
    refusing.cancel()
    assert time.monotonic() - started >= 0.1


async def test_answers_wait_until_the_server_is_stopping() -> None:
    gate = ShutdownGate()
    await gate.close(quiet_s=0.0, longest_s=1)
    held = asyncio.ensure_future(gate.hold_answer())
    await asyncio.sleep(0.02)
    assert not held.done()
    gate.stopping()
    await asyncio.wait_for(held, 1)


async def test_an_answer_is_not_held_past_its_callers_deadline() -> None:
    gate = ShutdownGate()
    await gate.close(quiet_s=0.0, longest_s=1)
    started = time.monotonic()
    # Never stopping: without the deadline it would wait forever (wait_for would raise).
    await asyncio.wait_for(gate.hold_answer(time_remaining_s=0.2), 5)
    assert time.monotonic() - started >= 0.2 - response_margin_s(0.2) - 0.01  # held until then
    holding = asyncio.ensure_future(gate.hold_answer(time_remaining_s=0.01))
    await asyncio.sleep(0)
    assert holding.done()  # less left than the margin: at once


async def test_an_open_gate_holds_nothing() -> None:
    await asyncio.wait_for(ShutdownGate().hold_answer(), 1)


async def test_a_refused_caller_is_asked_to_wait_past_the_listener() -> None:
    gate = ShutdownGate()
    gate.closed = True
    refusal = gate.refuse()
    assert gate.refused == 1
    assert RETRY_MARGIN_S <= refusal.retry_after_s <= LONGEST_S + RETRY_MARGIN_S
    assert "did not take this call" in str(refusal)
