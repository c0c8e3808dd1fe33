"""What the command-line tests share: how to start `fleetsim` as a real process, and an embedded
CSMS in a process of its own on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLEETSIM = [sys.executable, "-m", "cli"]
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
