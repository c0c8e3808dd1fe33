"""Stop signals from a run's first moment: counted until the engine listens, or, in a worker,
answered at once with a report line; and the handlers from before put back afterwards.

The worker cases run in a child process, since they end the process; the child's lines on
stdout are what the tests wait on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import trio

from fleetsim.simulator import stop_signals

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 60


def _listen_once() -> tuple[int, list[int]]:
    """What an engine that starts now sees: the signals caught before, and the first counts."""

    async def main() -> tuple[int, list[int]]:
        with stop_signals.listening() as signals:
            counts = []
            if signals.caught_before:
                async for count in signals.counted():
                    counts.append(count)
                    if count == signals.caught_before:
                        break
            return signals.caught_before, counts

    return trio.run(main)


def test_signals_caught_while_loading_reach_the_engine_once_it_listens() -> None:
    before = [signal.getsignal(signum) for signum in stop_signals.STOP_SIGNALS]
    with stop_signals.caught():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert _listen_once() == (2, [1, 2])
    assert [signal.getsignal(signum) for signum in stop_signals.STOP_SIGNALS] == before


def test_without_a_signal_the_engine_starts_with_none_caught() -> None:
    with stop_signals.caught():
        assert _listen_once() == (0, [])


def test_signals_after_the_engine_stopped_listening_are_dropped() -> None:
    with stop_signals.caught():
        assert _listen_once() == (0, [])
        os.kill(os.getpid(), signal.SIGTERM)  # the run is over: nothing to stop
        assert _listen_once() == (0, [])


def test_outside_the_main_thread_nothing_changes() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def in_a_thread() -> None:
        with stop_signals.caught():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(WAIT_S)
    assert seen == [before]


def _worker(body: str) -> subprocess.Popen[bytes]:
    """A process that is a worker in `caught` and runs `body` there."""
    script = textwrap.dedent(
        """
        import sys, time
        from fleetsim.simulator import stop_signals
        with stop_signals.caught(report_to=sys.stdout.buffer):
        """
    ) + textwrap.indent(textwrap.dedent(body), "    ")
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def test_a_worker_stopped_while_loading_says_so_and_exits_130() -> None:
    # The body stands for the engine's imports: it never listens.
    worker = _worker("sys.stdin.read()\n")
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == stop_signals.READY
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=WAIT_S) == 130
        assert worker.stdout.read() == stop_signals.STOPPED_BEFORE_START
    finally:
        worker.kill()


def test_a_worker_whose_engine_has_run_ignores_a_late_signal() -> None:
    body = """
    import trio
    async def engine():
        with stop_signals.listening():
            pass
    trio.run(engine)
    print("engine done", flush=True)
    sys.stdin.read()
    print("still here", flush=True)
    """
    worker = _worker(body)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == stop_signals.READY
        assert worker.stdout.readline() == b"engine done\n"
        worker.send_signal(signal.SIGTERM)
        assert worker.stdin is not None
        worker.stdin.close()  # lets the body finish, if the signal did not end it
        assert worker.wait(timeout=WAIT_S) == 0
        assert worker.stdout.read() == b"still here\n"
    finally:
        worker.kill()
