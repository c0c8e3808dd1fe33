"""Child processes of fleetsim (`--workers` and `fleetsim csms --processes`): how one is
started, how its report lines are read, and how it is stopped so that none outlives its parent.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

import trio

__all__ = ["lines", "python_command", "stop_children"]


def python_command(*arguments: str) -> list[str]:
    """`fleetsim ...` as a child process of this interpreter."""
    return [sys.executable, "-m", "cli", *arguments]


async def lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[bytes]:
    """The lines of `stream` without their newlines, until it ends (then any unfinished one)."""
    buffer = b""
    while chunk := await stream.receive_some(65536):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line
    if buffer:
        yield buffer


async def stop_children(processes: Sequence[trio.Process], signum: int, grace_s: float) -> None:
    """Send `signum` to every process that still runs, and kill those still running after
    `grace_s` seconds."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
    with trio.move_on_after(grace_s):
        for process in processes:
            await process.wait()
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()
