"""`FairTurn`: one holder at a time, first come first served, nothing allocated until a queue forms.

A link allows one outstanding CALL per direction (OCPP-J), and a WebSocket must not interleave
the bytes of two frames; both take turns with this.  It is on the path of every round trip, so
taking a free turn is a flag test and set written out by the caller -- no call, no await, no
Event -- and the queue of `trio.Event`s exists only once a second party has had to wait:

    if turn.held:
        await turn.wait()  # returns holding the turn
    else:
        turn.held = True
    try:
        ...
    finally:
        turn.release()

A turn is handed over, never dropped and retaken: `release` wakes the first waiter with `held`
still True, so no newcomer can slip in between.  A waiter cancelled after it was handed the
turn (the two can arrive in the same scheduling step) passes the turn on before it raises.
"""

from __future__ import annotations

from collections import deque

import trio

__all__ = ["FairTurn"]


class FairTurn:
    """A first-come-first-served turn; `held` is True while someone has it."""

    __slots__ = ("_waiters", "held")

    def __init__(self) -> None:
        self.held = False
        #: The parties waiting, oldest first; None until the first one comes.
        self._waiters: deque[trio.Event] | None = None

    async def wait(self) -> None:
        """Wait for the turn while someone else holds it; return holding it.

        Call only when `held` is True (otherwise take the turn by setting `held`).  If cancelled,
        the caller does not hold the turn and must not `release` it.
        """
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = deque()
        turn = trio.Event()
        waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self.release()  # the turn came with the cancellation: pass it on
            else:
                waiters.remove(turn)
            raise

    def release(self) -> None:
        """Give the turn to the longest waiter, or free it when no one waits."""
        waiters = self._waiters
        if waiters:
            waiters.popleft().set()  # `held` stays True: the turn passes to the next party
        else:
            self.held = False

    @property
    def waiting(self) -> int:
        """How many parties are queued for the turn."""
        return len(self._waiters) if self._waiters is not None else 0
