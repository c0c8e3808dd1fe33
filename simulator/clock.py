"""`SimClock`: simulated time, and the only place that turns it into trio time and back.

Simulated seconds count from the scenario's start; `speed` simulated seconds pass per second of
trio time (1 = real time, 60 = one simulated minute per second).  Because the clock reads
`trio.current_time()`, a test on trio's MockClock runs a simulated day in moments, and a load
run on the real clock keeps station timers honest.  OCPP timestamps carry simulated time.

`Alarm` is how the fleet's many timers sleep: a task parks on its alarm until a trio deadline
or until someone calls `wake()`.  A trio timeout is a cancel scope, and a station that meters
every 10 s, heartbeats every 60 s and waits for its EV would create, arm and fire thousands of
them a second across a fleet, each firing raising and catching `Cancelled` through the
sleeping task's frames.  Alarms instead go into one heap per trio run, and one system task
sleeps until the earliest and wakes every alarm that is due with a plain reschedule, so a
thousand stations whose timers fall in the same millisecond cost one trio deadline between
them, and a timer costs a heap push and a pop.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import time
from collections.abc import Callable
from typing import Any

import outcome
import trio
from trio.testing import MockClock

__all__ = ["COALESCE_S", "Alarm", "SimClock", "format_timestamp"]


def format_timestamp(epoch_s: float) -> str:
    """RFC 3339 UTC with exactly three decimals (`2026-11-24T06:49:58.123Z`).

    Some CSMSs reject more digits, and OCPP asks for UTC, so this is the one format fleetsim
    writes; `SimClock.timestamp` writes the same text through a cache of the seconds.
    """
    whole, millis = _whole_and_millis(epoch_s)
    return f"{_seconds_text(whole)}.{millis:03d}Z"


def _whole_and_millis(epoch_s: float) -> tuple[int, int]:
    """Whole seconds and milliseconds, rounded to the nearest millisecond (never truncated:
    truncation turns .123 into .122 for most binary fractions)."""
    whole, millis = divmod(round(epoch_s * 1000), 1000)
    return whole, millis


#: What reading a `SimClock` says before its `start()`.
_NOT_STARTED = "SimClock.start() was not called inside the trio run"
#: ".000Z" to ".999Z": the end of a timestamp by its milliseconds.
_MILLIS_TEXT = tuple(f".{millis:03d}Z" for millis in range(1000))


def _seconds_text(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


class SimClock:
    """Simulated time for one run; call `start()` inside trio before anything reads it."""

    __slots__ = (
        "_cached_second",
        "_cached_text",
        "_read_trio_clock",
        "_start_epoch_s",
        "_trio_origin",
        "speed",
    )

    def __init__(self, start: dt.datetime, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        if start.tzinfo is None:
            raise ValueError("the start time must carry a timezone (write it with Z or +00:00)")
        self.speed = speed
        self._start_epoch_s = start.timestamp()
        self._trio_origin: float | None = None
        #: The trio run's clock's `current_time`, bound at `start`: what `trio.current_time()`
        #: returns, read without the three calls that find the run's clock every time, since
        #: a station reads the clock several times per message.
        self._read_trio_clock: Callable[[], float] | None = None
        self._cached_second = -1
        self._cached_text = ""

    def shifted(self, offset_s: float) -> SimClock:
        """This clock with its wall-clock time `offset_s` seconds later: the same simulated
        seconds and timers, other timestamps.  A station that sets its clock from the CSMS
        (ClockCtrlr.TimeSource Heartbeat) keeps one of its own, while the fleet shares one."""
        clock = SimClock.__new__(SimClock)
        clock.speed = self.speed
        clock._start_epoch_s = self._start_epoch_s + offset_s
        clock._trio_origin = self._trio_origin
        clock._read_trio_clock = self._read_trio_clock
        clock._cached_second = -1
        clock._cached_text = ""
        return clock

    def start(self) -> None:
        """Pin simulated second 0 to the current trio time."""
        read = trio.lowlevel.current_clock().current_time
        self._trio_origin = read()
        self._read_trio_clock = read

    @property
    def trio_origin(self) -> float:
        if self._trio_origin is None:
            raise RuntimeError(_NOT_STARTED)
        return self._trio_origin

    def sim_now(self) -> float:
        """Simulated seconds since the scenario's start."""
        read = self._read_trio_clock
        origin = self._trio_origin
        if read is None or origin is None:
            raise RuntimeError(_NOT_STARTED)
        return (read() - origin) * self.speed

    def trio_deadline(self, sim_s: float) -> float:
        """The trio time at which simulated second `sim_s` arrives."""
        origin = self._trio_origin
        if origin is None:
            raise RuntimeError(_NOT_STARTED)
        return origin + sim_s / self.speed

    def trio_duration(self, sim_duration_s: float) -> float:
        return sim_duration_s / self.speed

    async def sleep_until(self, sim_s: float) -> None:
        await trio.sleep_until(self.trio_deadline(sim_s))

    async def sleep(self, sim_duration_s: float) -> None:
        await trio.sleep(max(0.0, sim_duration_s) / self.speed)

    def epoch_s(self, sim_s: float | None = None) -> float:
        """Unix time of simulated second `sim_s` (default: now)."""
        return self._start_epoch_s + (self.sim_now() if sim_s is None else sim_s)

    def timestamp(self, sim_s: float | None = None) -> str:
        """The OCPP timestamp of simulated second `sim_s` (default: now).

        The date-time part is formatted once per simulated second and reused, because
        thousands of stations stamp their messages within the same second, and the
        milliseconds' part is looked up.  (The rounding is `_whole_and_millis`', written out:
        this runs for every message.)
        """
        whole, millis = divmod(
            round((self._start_epoch_s + (self.sim_now() if sim_s is None else sim_s)) * 1000),
            1000,
        )
        if whole != self._cached_second:
            self._cached_second = whole
            self._cached_text = _seconds_text(whole)
        return self._cached_text + _MILLIS_TEXT[millis]


#: A heap entry: [trio deadline, sequence number, the alarm or None once it is dead].  A list,
#: because heapq then compares entries in C (deadline, then the unique sequence number).
_Entry = list[Any]


class _TimerHeap:
    """The alarms of one trio run that sleep until a deadline, and the task that fires them.

    Entries are `[deadline, sequence, alarm]` lists; an alarm woken early or cancelled clears
    its entry's alarm instead of searching the heap, and the heap is rebuilt without such dead
    entries once they outnumber the live ones.
    """

    __slots__ = (
        "_dead",
        "_due_at",
        "_fired_at",
        "_heap",
        "_resolution_s",
        "_scope",
        "_sequence",
        "now",
    )

    #: Dead entries tolerated before the heap is rebuilt, however few live ones there are.
    PRUNE_SLACK = 1024

    def __init__(self, resolution_s: float, now: Callable[[], float] = trio.current_time) -> None:
        #: The run's clock's `current_time`: `trio.current_time()` in one call, for the check
        #: every sleep makes.
        self.now = now
        self._heap: list[_Entry] = []
        self._sequence = 0
        self._dead = 0
        #: The earliest deadline in the heap (inf: none).
        self._due_at = math.inf
        #: Fire at most once per `resolution_s`: alarms falling due meanwhile wait for the next
        #: firing, at most that much late (0: each at its own deadline).
        self._resolution_s = resolution_s
        self._fired_at = -math.inf
        self._scope: trio.CancelScope | None = None

    def add(self, deadline: float, alarm: Alarm) -> _Entry:
        self._sequence += 1
        entry: _Entry = [deadline, self._sequence, alarm]
        heapq.heappush(self._heap, entry)
        if deadline < self._due_at:
            self._due_at = deadline
            scope = self._scope
            if scope is not None:
                wake_at = max(deadline, self._fired_at + self._resolution_s)
                if wake_at < scope.deadline:
                    scope.deadline = wake_at  # wake the firing task earlier
        return entry

    def discard(self, entry: _Entry) -> None:
        entry[2] = None
        self._dead += 1
        if self._dead > len(self._heap) // 2 + self.PRUNE_SLACK:
            self._heap = [entry for entry in self._heap if entry[2] is not None]
            heapq.heapify(self._heap)
            self._dead = 0

    async def run(self) -> None:
        """Fire due alarms until the run ends (a system task)."""
        while True:
            wake_at = max(self._due_at, self._fired_at + self._resolution_s)
            with trio.CancelScope(deadline=wake_at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = self._fired_at = self.now()
            heap = self._heap
            while heap and heap[0][0] <= now:
                alarm = heapq.heappop(heap)[2]
                if alarm is None:
                    self._dead -= 1
                else:
                    alarm._fire()
            self._due_at = heap[0][0] if heap else math.inf


_TIMERS: trio.lowlevel.RunVar[_TimerHeap] = trio.lowlevel.RunVar("fleetsim_timers")


#: On the real clock, alarms due within this many seconds of each other fire together (a
#: thousand stations' timers in a few milliseconds cost one wake-up, not a thousand), so an
#: alarm may fire up to this late -- far less than the scheduling delays of a loaded process.
#: On trio's MockClock every alarm fires exactly at its deadline, as tests expect.
COALESCE_S = 0.005


def _timers() -> _TimerHeap:
    """This trio run's timer heap, started on first use."""
    try:
        return _TIMERS.get()
    except LookupError:
        clock = trio.lowlevel.current_clock()
        timers = _TimerHeap(0.0 if isinstance(clock, MockClock) else COALESCE_S, clock.current_time)
        _TIMERS.set(timers)
        trio.lowlevel.spawn_system_task(timers.run, name="fleetsim.clock.timers")
        return timers


class Alarm:
    """Where one task sleeps until a trio deadline or an explicit `wake()` (one task at a time).

    A station has one for its heartbeat and each EVSE one for its visit task; they are reused
    for every sleep, so a sleep allocates only its heap entry.
    """

    __slots__ = ("_entry", "_task")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._entry: _Entry | None = None

    @property
    def sleeping(self) -> bool:
        return self._task is not None

    async def sleep_until(self, deadline: float) -> bool:
        """Sleep until trio time `deadline` (inf: until woken); True if `wake()` came first.

        A checkpoint like any trio sleep: cancellation ends it with `Cancelled`.
        """
        if self._task is not None:
            raise RuntimeError("another task is already sleeping on this alarm")
        timers = None
        if deadline != math.inf:
            timers = _timers()
            if deadline <= timers.now():
                await trio.lowlevel.checkpoint()
                return False
        self._task = trio.lowlevel.current_task()
        if timers is not None:
            self._entry = timers.add(deadline, self)
        woken: bool = await trio.lowlevel.wait_task_rescheduled(self._abort)
        return woken

    def wake(self) -> None:
        """End the current sleep now (nothing happens when no task sleeps)."""
        task = self._task
        if task is None:
            return
        self._task = None
        self._drop_entry()
        trio.lowlevel.reschedule(task, outcome.Value(True))

    def _fire(self) -> None:
        """The deadline came (called by the timer heap, which has removed the entry)."""
        task = self._task
        self._task = None
        self._entry = None
        if task is not None:
            trio.lowlevel.reschedule(task, outcome.Value(False))

    def _abort(self, raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self._task = None
        self._drop_entry()
        return trio.lowlevel.Abort.SUCCEEDED

    def _drop_entry(self) -> None:
        entry = self._entry
        if entry is not None:
            self._entry = None
            _timers().discard(entry)
