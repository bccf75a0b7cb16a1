"""ShutdownGate: when the gateway may stop listening, and how long refused callers are asked to wait."""

from __future__ import annotations

from dynamo_gateway_server.stopping import LONGEST_S, RETRY_MARGIN_S, ShutdownGate


async def test_an_idle_gateway_stops_after_the_quiet_spell() -> None:
    gate = ShutdownGate(in_flight=lambda: 0)
    await gate.close(quiet_s=0.01, longest_s=5)
    assert gate.closed and gate.refused == 0


async def test_the_gate_waits_for_calls_taken_up_earlier() -> None:
    running = [3]  # calls still running: one finishes at each look

    def in_flight() -> int:
        running[0] = max(0, running[0] - 1)
        return running[0]

    seen: list[int] = []
    gate = ShutdownGate(in_flight=lambda: seen.append(in_flight()) or seen[-1])
    await gate.close(quiet_s=0.01, longest_s=5)
    assert seen[:3] == [2, 1, 0]  # it looked until none was left


async def test_calls_that_never_finish_do_not_hold_the_stop_forever() -> None:
    gate = ShutdownGate(in_flight=lambda: 1)
    await gate.close(quiet_s=0.01, longest_s=0.05)
    assert gate.closed


async def test_a_refused_caller_is_asked_to_wait_past_the_listener() -> None:
    gate = ShutdownGate()
    gate.closed = True
    refusal = gate.refuse()
    assert gate.refused == 1
    assert RETRY_MARGIN_S <= refusal.retry_after_s <= LONGEST_S + RETRY_MARGIN_S
    assert "did not take this call" in str(refusal)
