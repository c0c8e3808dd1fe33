"""Child processes of fleetsim (`--workers` and `fleetsim csms --processes`): how one is
started, how its report lines are read, and how it is stopped so that none outlives its parent.

A child learns that its parent is gone from its stdin, a pipe whose write end only the parent
holds (`wait_parent_gone`).  That end closes however the parent ends, SIGKILL included, and at
no other time.  Linux's PR_SET_PDEATHSIG looks simpler but is not robust here: it fires when
the *thread* that started the child ends, and trio starts children from its worker threads,
which end after idling for a while, so children would be stopped in the middle of a run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any

import trio

__all__ = ["discard_output", "lines", "python_command", "stop_children", "wait_parent_gone"]


def python_command(*arguments: str) -> list[str]:
    """`fleetsim ...` as a child process of this interpreter."""
    return [sys.executable, "-m", "fleetsim.cli", *arguments]


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


async def wait_parent_gone() -> None:
    """Return when stdin, a pipe from the parent, reaches its end: the parent is gone.

    For a child started with `stdin=subprocess.PIPE`; the parent never writes to the pipe,
    and whatever it might write is read and dropped.
    """
    async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
        while await stdin.receive_some(4096):
            pass


def discard_output(stream: IO[Any]) -> None:
    """After a BrokenPipeError on `stream`: its reader, the parent, is gone, so send what is
    still buffered and everything after it to /dev/null.  Otherwise each later line, and
    Python's last flush at exit, would fail again and print a traceback to stderr, which is
    the terminal of whoever started the parent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)
