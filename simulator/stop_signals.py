"""Ctrl-C and SIGTERM over the whole life of a run, not only while its event loop listens.

The engine takes its stop signals through trio (`listening`), but a `fleetsim run` process
first spends seconds loading: the engine's imports take 1.6-2.2 s on a busy 2-core machine.
A signal in that time would meet Python's defaults: SIGTERM ends the process on the spot with
no summary, and a parent of workers that ends so leaves its workers running.  So the `run`
command catches both signals from its first moment (`caught`) until the engine listens:

- a process that runs alone, and the parent of workers, count them; the engine acts on them
  as soon as it listens, as if they came then.  The first stops the run before any station
  starts, so the run still ends with exit code 130 and a summary (of no station, perhaps);
- a worker answers at once: it writes its parent the line `STOPPED_BEFORE_START` and exits
  with code 130, so the parent knows it stopped rather than died.  Its first line,
  `READY`, written as soon as it catches signals, tells the parent that a signal no longer
  kills it without a report; the parent signals no worker before that line (workers.py).

Once the engine has stopped listening, the run is over and the process about to end by
itself, so signals are ignored until the `caught` block ends and the handlers from before it
come back.  Only the main thread can catch signals; elsewhere `caught` changes nothing.

What no Python code can cover is the moment before the `run` command begins, while Python
loads the command line (under a second): a signal then ends the process as Python's default
does, but nothing has been started that could be left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import BinaryIO, Literal

__all__ = [
    "READY",
    "STOPPED_BEFORE_START",
    "STOP_SIGNALS",
    "StopSignals",
    "caught",
    "listening",
]

#: The signals that stop a run: Ctrl-C, and what service managers and `kill` send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: A worker's first report line: from now on a stop signal ends it with a report.
READY = b'{"ready": true}\n'
#: A worker's last line when a stop came before its run started: it ran no station.
STOPPED_BEFORE_START = b'{"stopped_before_start": true}\n'
#: The exit code of a stopped run (cli/exit_codes.py's INTERRUPTED, 128 + SIGINT).
_STOPPED_EXIT_CODE = 130


@dataclass(eq=False)
class _Catcher:
    """The handler of both signals while a `caught` block runs."""

    #: A worker's report stream (its stdout, a pipe to the parent); None in other processes.
    report_fd: int | None
    caught: int = 0
    phase: Literal["loading", "listening", "over"] = "loading"

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.phase != "loading":
            return
        if self.report_fd is None:
            self.caught += 1
            return
        # os.write and os._exit: nothing buffered to flush, and nothing started that needs
        # closing; the line is shorter than PIPE_BUF, so it arrives whole.
        with contextlib.suppress(OSError):
            os.write(self.report_fd, STOPPED_BEFORE_START)
        os._exit(_STOPPED_EXIT_CODE)


_current: _Catcher | None = None


@contextlib.contextmanager
def caught(*, report_to: BinaryIO | None = None) -> Iterator[None]:
    """Catch SIGINT and SIGTERM within the block, as the module docstring says.

    `report_to` makes this process a worker: `READY` goes there at once, and a signal before
    the engine listens ends the process with `STOPPED_BEFORE_START` there.
    """
    global _current
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    catcher = _Catcher(None if report_to is None else report_to.fileno())
    previous = {signum: signal.signal(signum, catcher.handle) for signum in STOP_SIGNALS}
    outer, _current = _current, catcher
    try:
        if report_to is not None:
            with contextlib.suppress(BrokenPipeError):
                report_to.write(READY)
                report_to.flush()
        yield
    finally:
        _current = outer
        for signum, handler in previous.items():
            # None: a handler not set from Python, which Python cannot put back; the default
            # is what such a process had.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@dataclass(eq=False)
class StopSignals:
    """The stop signals an engine acts on: those caught before it listened, then new ones."""

    #: How many came while the process was loading; nonzero means "stop before starting".
    caught_before: int
    _receiver: AsyncIterator[int]

    async def counted(self) -> AsyncIterator[int]:
        """1, 2, 3, ...: one number per signal, those caught before first and at once."""
        count = 0
        for _ in range(self.caught_before):
            count += 1
            yield count
        async for _signum in self._receiver:
            count += 1
            yield count


@contextlib.contextmanager
def listening() -> Iterator[StopSignals]:
    """Take SIGINT and SIGTERM through trio within the block (inside `trio.run`), with the
    count of those caught before it.  Without a `caught` block around it, that count is 0."""
    import trio

    with trio.open_signal_receiver(*STOP_SIGNALS) as receiver:
        # From here a signal reaches trio's handler, not the catcher, so the count is final.
        catcher = _current
        caught_before = 0
        if catcher is not None:
            caught_before = catcher.caught
            catcher.phase = "listening"
        try:
            yield StopSignals(caught_before, receiver)
        finally:
            if catcher is not None:
                catcher.phase = "over"
