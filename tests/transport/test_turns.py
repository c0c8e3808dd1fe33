"""`FairTurn`: one holder at a time, first come first served, nothing allocated uncontended.

Each waiter is started and left parked (`wait_all_tasks_blocked`) before the next, so the order
in which they queued is known; the clock is trio's MockClock, so a turn that is never handed on
fails the test at once instead of hanging it.
"""

from __future__ import annotations

import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from fleetsim.simulator.transport.turns import FairTurn

#: MockClock seconds: a test whose turn is never handed on fails here instead of hanging.
WAIT_S = 10


async def take(turn: FairTurn) -> None:
    """The callers' idiom: set the flag if the turn is free, otherwise queue for it."""
    if turn.held:
        await turn.wait()
    else:
        turn.held = True


async def queue_for_turn(
    nursery: trio.Nursery, turn: FairTurn, name: str, log: list[str]
) -> trio.CancelScope:
    """Start a party that waits for `turn`, logs `name` when it has it and releases it; return
    once it is parked in the queue, with the scope that cancels it."""
    scope = trio.CancelScope()

    async def party() -> None:
        with scope:
            await take(turn)
            try:
                log.append(name)
            finally:
                turn.release()
            return
        log.append(f"{name} cancelled")

    waiting_before = turn.waiting
    nursery.start_soon(party)
    await wait_all_tasks_blocked()
    assert turn.waiting == waiting_before + 1
    return scope


async def test_an_uncontended_turn_is_a_flag_and_allocates_no_queue() -> None:
    turn = FairTurn()
    for _ in range(3):
        await take(turn)
        assert turn.held
        turn.release()
        assert not turn.held
    assert turn._waiters is None


async def test_waiters_get_the_turn_in_the_order_they_came(
    autojump_clock: MockClock, nursery: trio.Nursery
) -> None:
    turn = FairTurn()
    log: list[str] = []
    await take(turn)
    for name in ("first", "second", "third"):
        await queue_for_turn(nursery, turn, name, log)
    turn.release()
    assert turn.held, "the turn is handed over, not freed, so no newcomer can slip in"
    with trio.fail_after(WAIT_S):
        await take(turn)
    assert log == ["first", "second", "third"]
    turn.release()
    assert not turn.held
    assert turn.waiting == 0


async def test_a_waiter_cancelled_in_the_queue_leaves_it_without_the_turn(
    autojump_clock: MockClock, nursery: trio.Nursery
) -> None:
    turn = FairTurn()
    log: list[str] = []
    await take(turn)
    leaving = await queue_for_turn(nursery, turn, "leaving", log)
    await queue_for_turn(nursery, turn, "staying", log)
    leaving.cancel()
    await wait_all_tasks_blocked()
    assert log == ["leaving cancelled"]
    assert turn.held
    assert turn.waiting == 1
    turn.release()
    with trio.fail_after(WAIT_S):
        await take(turn)
    assert log == ["leaving cancelled", "staying"]


async def test_a_turn_handed_over_together_with_a_cancellation_is_passed_on(
    autojump_clock: MockClock, nursery: trio.Nursery
) -> None:
    turn = FairTurn()
    log: list[str] = []
    await take(turn)
    first = await queue_for_turn(nursery, turn, "first", log)
    await queue_for_turn(nursery, turn, "second", log)
    # Both in one scheduling step: the first waiter is woken to be cancelled, and is then
    # handed the turn before it runs.
    first.cancel()
    turn.release()
    assert turn.waiting == 1
    with trio.fail_after(WAIT_S):
        await take(turn)
    assert log == ["first cancelled", "second"]
    turn.release()
    assert not turn.held
