"""`EventPump`: the simpy world, driven by trio in simulated time.

The EV population and the grid are simpy processes in one `simpy.Environment` whose time is
simulated seconds since the run's start.  One trio task pumps it: sleep until the next event's
simulated time (as `SimClock` maps it to trio time), then run every event due.  Station code and
simpy processes share one thread, so either may call the other directly; when trio code
schedules something in simpy that is due earlier than the pump's current sleep, `poke()` makes
the pump look again.

Because the pump sleeps on the clock, trio's MockClock runs a simulated day as fast as the CPU
allows (`fleetsim run --fast`), and the same world runs in real time against a real CSMS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from .clock import Alarm, SimClock

__all__ = ["EventPump"]


class EventPump:
    """Runs `env` in simulated time; see the module docstring."""

    __slots__ = ("_alarm", "_sleeping_until_s", "clock", "env", "steps")

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.env = simpy.Environment(initial_time=0.0)
        self._alarm = Alarm()
        #: The simulated second the pump sleeps until: inf while it waits for a poke, -inf
        #: while it is not sleeping (stepping events, or not started), when it needs no poke
        #: because it peeks again before it sleeps.
        self._sleeping_until_s = -math.inf
        self.steps = 0

    def process(self, generator: Generator[Any, Any, Any]) -> simpy.Process:
        """Start a simpy process now; it is due at once, so the pump is woken."""
        process = self.env.process(generator)
        self.poke()
        return process

    def call_at(self, sim_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` at simulated second `sim_s` (at once if that has passed).

        One simpy Timeout with the callback attached, rather than a process per call: a
        load-test loop schedules one of these per EV visit, thousands a minute.  The pump is
        woken only when the new event is due before what it sleeps until.
        """
        env = self.env
        at_s = max(sim_s, env.now)
        timeout = env.timeout(at_s - env.now)
        timeout.callbacks.append(lambda _event: callback())
        if at_s < self._sleeping_until_s:
            self._alarm.wake()

    def poke(self) -> None:
        """Something was scheduled from outside simpy: re-read the next event's time."""
        self._alarm.wake()

    async def run(self) -> None:
        """Pump simpy events until cancelled."""
        env = self.env
        clock = self.clock
        alarm = self._alarm
        while True:
            due_s = env.peek()
            self._sleeping_until_s = due_s
            try:
                deadline = math.inf if math.isinf(due_s) else clock.trio_deadline(due_s)
                if await alarm.sleep_until(deadline):
                    continue  # poked: something earlier may be due now
            finally:
                self._sleeping_until_s = -math.inf
            # Run everything due up to now, in order, with simpy's time at each event's own
            # simulated second.  The deadline of `due_s` has passed, so `due_s` counts as
            # reached even when the float round trip through trio time reads a hair before it.
            now_s = max(clock.sim_now(), due_s)
            while env.peek() <= now_s:
                env.step()
                self.steps += 1
