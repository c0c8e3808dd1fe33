"""`ExitCode`: the one place that says what each exit status of `fleetsim` means.

CI pipelines branch on these numbers, so they never change meaning: add a new code rather than
reuse one.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """Exit statuses of `fleetsim`, each with the sentence a pipeline log should show."""

    #: The command did what was asked: every scenario is valid, or the run met its thresholds.
    OK = 0
    #: The run finished (or a threshold with abort_on_fail stopped it) and at least one
    #: threshold failed, so the CSMS did not meet its target.
    THRESHOLD_FAILED = 1
    #: A scenario file or command-line value is invalid; nothing was run.
    BAD_SCENARIO = 2
    #: The CSMS accepted no station: it could not be reached, never answered a
    #: BootNotification, answered it with a CALLERROR or Rejected every station.  Nothing was
    #: measured, and the run says which.
    CSMS_UNREACHABLE = 3
    #: A worker process of `--workers` died before its final report; the others ran on and
    #: the summary holds its last counters.
    WORKER_DIED = 4
    #: The user stopped the run with Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130
