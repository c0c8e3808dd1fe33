"""What the command-line tests share: how to start `fleetsim` as a real process, an embedded
CSMS in a process of its own on a free loopback port, and how to watch processes: their
output line by line, their children, and their end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
FLEETSIM = [sys.executable, "-m", "fleetsim.cli"]
#: Wide enough that rich does not wrap the lines the tests read.
ENV = {**os.environ, "COLUMNS": "200"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def csms_process() -> Iterator[str]:
    """`fleetsim csms` on a free port; yields its URL once it listens, stops it on exit."""
    port = free_port()
    csms = subprocess.Popen(
        [*FLEETSIM, "csms", "--port", str(port)],
        cwd=ROOT,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert csms.stdout is not None
        assert "embedded CSMS on" in csms.stdout.readline()
        yield f"ws://127.0.0.1:{port}/ocpp"
    finally:
        csms.send_signal(signal.SIGINT)
        csms.wait(timeout=10)


class OutputLines:
    """The lines a process writes to a pipe, read by a thread as they come, so a test can wait
    for one with a bound and still have the whole output at the end."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, marker: str, timeout_s: float) -> str:
        """The first line that contains `marker`; fails after `timeout_s` or at the end."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if marker in line:
                        return line
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    break
                self._changed.wait(remaining)
        raise AssertionError(f"{marker!r} did not appear within {timeout_s} s:\n{self.text}")

    def wait_for_end(self, timeout_s: float) -> str:
        """All of the output, once every process that held the pipe has closed it."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise AssertionError(f"the output did not end within {timeout_s} s:\n{self.text}")
        return self.text


def children_of(parent_pid: int) -> dict[int, list[bytes]]:
    """The processes whose parent is `parent_pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent_pid:
            found[int(entry.name)] = arguments
    return found


def is_running(pid: int) -> bool:
    """Whether `pid` still runs: it exists and is not a zombie waiting to be reaped (a process
    whose parent died may wait for an init that never reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until_gone(pids: Iterable[int], timeout_s: float) -> None:
    """Return once none of `pids` runs; fail, naming those left, after `timeout_s`."""
    pids = list(pids)
    deadline = time.monotonic() + timeout_s
    while (running := [pid for pid in pids if is_running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running, f"still running after {timeout_s} s: {running}"
