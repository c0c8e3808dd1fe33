"""`--workers N`: one fleet over several processes, with one progress line, one metrics
endpoint and one summary.

A Python process runs its stations on one core, and may hold at most as many sockets as its
open-file limit allows (20,000 on some machines, not raisable).  Past either, the fleet is split:
the parent starts N worker processes, `fleetsim run ... --worker w/N`, each running a
contiguous block of the stations (within its shard, when the run is a shard) with its own trio
loop, ramping up at 1/N of the scenario's rate.

Each worker writes JSON lines to its stdout: first `{"ready": true}` once a stop signal can no
longer kill it without a report (stop_signals.py), then its counters (`RunStats.to_wire`) once
a second, and its summary and outcome as the last line (or, when it was stopped before its run
started, `{"stopped_before_start": true}`).  The parent keeps the latest counters of
each worker: its Prometheus endpoint sums them (`RunStatsCollector` over the workers'
recorders, and `FleetStateCollector` over the fleet states they send with them: sums,
but the simulated clock's and the DER events' maximum and the grid frequency's mean), its
progress line shows their sum, and the end-of-run summary is built from the
sum of the final counters, whose round-trip histograms add up exactly, so percentiles stay
right over the whole fleet.

Without a CSMS URL the parent starts the embedded CSMS as its own processes (`fleetsim csms
--processes K` on one port with SO_REUSEPORT, K enough for every station's socket), so the
stations' sockets and the CSMS's never share a process's file limit.

A worker that dies is reported by number, with its block of stations and how it ended; its
last counters stay in the totals, and the others run on.  Signals go to the parent, which asks
every worker to stop (SIGTERM: they report, then close their connections); a second Ctrl-C
kills them.  Workers run in their own session, so a terminal's Ctrl-C reaches only the parent.

A stop ends within seconds, with a summary, however large the fleet and however busy the
machine.  A worker sends its final report at the stop, before its stations close their
connections (run.py), and the parent waits `FINAL_REPORT_WAIT_S` for it: a worker that has
not sent it by then is killed, its last counters (a second old) stand in the totals, and the
summary's `stop.cut_short` says so.  A worker that has reported gets `EXIT_GRACE_S` to close
its connections and end, then it is killed, losing nothing.  The summary is written before
the embedded CSMS is stopped, which gets `CSMS_STOP_GRACE_S`.

A stop reaches every process whatever its timing.  The parent catches SIGINT and SIGTERM from
the start of the `run` command (stop_signals.py), and one that came before it started anything
ends the run before it starts a process.  It sends SIGTERM to a worker only after the worker's
ready line: before it, Python's default would kill the worker mid-import with no report.  A
worker that the stop reaches before its run starts exits at once with its
`stopped_before_start` line; either way it counts as stopped, not died.  And a worker whose
parent is gone, SIGKILL included, stops by itself: its stdin is a pipe from the parent, and its
end means the parent is gone (children.py), as for the embedded CSMS the parent starts.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import trio
from prometheus_client import REGISTRY
from rich.console import Console

from .children import lines, python_command, stop_children
from .limits import processes_for_sockets
from .metrics import FleetStateCollector, RunStatsCollector
from .report import ProgressLine, build_summary, conclude, publish
from .run import RunOutcome, ThresholdWatch, start_metrics_server
from .scenario import Scenario
from .shard import Shard
from .stats import RunStats
from .stop_signals import StopSignals, listening
from .thresholds import Threshold

__all__ = [
    "WorkerDied",
    "WorkersRun",
    "plan_workers",
    "worker_blocks",
    "worker_command",
    "worker_scenario",
]

#: Below this many stations `--workers auto` keeps to one process: the fleet fits a core.
AUTO_STATIONS_PER_CORE = 2_000
#: Wall seconds the workers get, after their run should be over, before they are stopped.
OVERRUN_GRACE_S = 30.0
#: Wall seconds between asking a worker to stop and killing it, outside a stop's deadlines:
#: a worker whose report stream ended before it did, or this process torn down by an error.
STOP_GRACE_S = 10.0
#: Wall seconds the workers get, from a stop, to send their final reports.  A worker makes its
#: summary at the stop, before its stations close their connections, so this is ample even for
#: 15,000 stations a worker on a busy machine; one that has not reported by then is killed, and
#: its last counters (a second old at most) stand in the summary, which says it was cut short.
FINAL_REPORT_WAIT_S = 7.0
#: Wall seconds a worker gets, after its final report, to close its stations' connections and
#: end; then it is killed, losing nothing (its report is in).
EXIT_GRACE_S = 2.0
#: Wall seconds the embedded CSMS's processes get to end once the fleet has.
CSMS_STOP_GRACE_S = 3.0
#: Exit codes with which a worker ended its run normally: done, CSMS unreachable, stopped.
_NORMAL_EXITS = frozenset({0, 3, 130})
#: How a process that a stop signal ended reports (the negative signal number).
_ENDED_BY_STOP_SIGNAL = frozenset({-signal.SIGINT, -signal.SIGTERM})
_CSMS_URL_LINE = re.compile(rb"embedded CSMS on (ws://\S+)")


def plan_workers(requested: str, stations: int, *, cpus: int | None = None) -> int:
    """How many worker processes `--workers requested` means for `stations` stations.

    `auto` takes a process per core once the fleet is larger than one core carries, and
    always enough processes for every station's socket to fit a process's open-file limit.
    """
    needed_for_files = processes_for_sockets(stations)
    if requested == "auto":
        cores = cpus if cpus is not None else (os.cpu_count() or 1)
        by_cores = min(cores, math.ceil(stations / AUTO_STATIONS_PER_CORE))
        return max(1, needed_for_files, by_cores)
    try:
        count = int(requested)
    except ValueError:
        raise ValueError(
            f"--workers takes a number of processes or auto, not {requested!r}"
        ) from None
    if count < 1:
        raise ValueError(f"--workers needs at least 1 process, not {count}")
    if count > stations:
        raise ValueError(
            f"--workers {count} is more processes than the {stations} stations; "
            f"use at most {stations}"
        )
    return count


def worker_blocks(first_index: int, stations: int, workers: int) -> list[range]:
    """The block of station indices each worker runs: `--worker w/N` cuts the same blocks."""
    return [Shard(index, workers).block(first_index, stations) for index in range(workers)]


def worker_scenario(scenario: Scenario, part: Shard) -> Scenario:
    """Worker w of N's part of the (shard's) fleet, ramping up at 1/N of the whole's rate."""
    stations = scenario.stations
    scenario = scenario.for_block(part.block(stations.first_index, stations.count))
    ramp_up_per_s = stations.ramp_up_per_s / part.count
    return scenario.model_copy(
        update={"stations": scenario.stations.model_copy(update={"ramp_up_per_s": ramp_up_per_s})}
    )


def worker_command(
    scenario_path: Path,
    passed_on: Sequence[str],
    *,
    index: int,
    count: int,
    csms_url: str,
    trace_path: Path | None = None,
    report_dir: Path | None = None,
) -> list[str]:
    """The command line of worker `index` of `count`: `fleetsim run` on the same scenario file
    with the parent's flags (`passed_on`), against `csms_url`, with its own trace file
    (`t.w.jsonl` for `t.jsonl`) and report directory (`DIR/worker-w`)."""
    command = python_command(
        "run", str(scenario_path), *passed_on, "--csms", csms_url, "--no-progress"
    )
    command += ["--worker", f"{index}/{count}"]
    if trace_path is not None:
        name = f"{trace_path.stem}.{index}{trace_path.suffix}"
        command += ["--trace", str(trace_path.with_name(name))]
    if report_dir is not None:
        command += ["--report-dir", str(report_dir / f"worker-{index}")]
    return command


@dataclass(frozen=True, slots=True)
class WorkerDied:
    """A worker that ended without its final report."""

    index: int
    first_station: str
    last_station: str
    how: str

    def __str__(self) -> str:
        return (
            f"worker {self.index} (stations {self.first_station} to {self.last_station}) {self.how}"
            "; its last reported counters are in the totals"
        )


@dataclass
class _Worker:
    index: int
    block: range
    stats: RunStats = field(default_factory=RunStats)
    final: dict[str, Any] | None = None
    #: Its last `metrics.read_fleet_state`, None before its first report.
    state: dict[str, Any] | None = None
    process: trio.Process | None = None
    #: It wrote its ready line: a stop signal no longer kills it without a report.
    ready: bool = False
    #: A stop reached it before its run started; it ran no station.
    stopped_before_start: bool = False
    #: Around the reading of its reports: its deadline ends the wait for them (see
    #: `FINAL_REPORT_WAIT_S` and `EXIT_GRACE_S`).
    reading: trio.CancelScope = field(default_factory=trio.CancelScope)
    #: It was killed by this process once its time was up (after its final report, or at the
    #: stop's deadline without one).
    killed: bool = False


class WorkersRun:
    """The parent of a run with worker processes; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        workers: int,
        worker_command: Callable[[int, str], Sequence[str]],
        csms_command: Callable[[int], Sequence[str]],
        console: Console,
        show_progress: bool = True,
        summary_json_path: Path | None = None,
        shard: Shard | None = None,
        thresholds: Sequence[Threshold] = (),
        junit_path: Path | None = None,
    ) -> None:
        """`worker_command(w, csms_url)` is the command line of worker w;
        `csms_command(processes)` starts the embedded CSMS when the scenario names none."""
        self.scenario = scenario
        self.console = console
        self.show_progress = show_progress
        self.summary_json_path = summary_json_path
        self.shard = shard
        self.thresholds = tuple(thresholds)
        self.junit_path = junit_path
        self._worker_command = worker_command
        self._csms_command = csms_command
        stations = scenario.stations
        self._workers = [
            _Worker(index, block)
            for index, block in enumerate(
                worker_blocks(stations.first_index, stations.count, workers)
            )
        ]
        self._peak_connected = 0
        #: A stop signal came: start nothing more, and stop the workers.
        self._stop_requested = False
        #: The workers were asked to stop; one not ready yet is asked once it is.
        self._workers_told_to_stop = False
        #: Around the start of the embedded CSMS, which a stop abandons.
        self._starting = trio.CancelScope()
        self.died: list[WorkerDied] = []
        #: What the summary lacks because a stop's deadline came first, in words, by worker.
        self.cut_short: dict[int, str] = {}
        #: When the run stopped (wall clock): the stop request, else the first final report.
        self._stopped_wall_s: float | None = None
        #: The trio time by which every worker must have sent its final report, once a stop
        #: was requested.
        self._final_deadline = math.inf
        self._wall_start = time.perf_counter()
        self._watch = ThresholdWatch(self.thresholds, self._live_summary, console)
        #: Around the progress line, taken down before the summary is printed.
        self._showing = trio.CancelScope()
        self._progress_gone = trio.Event()

    # -- the totals -----------------------------------------------------------------------

    def combined(self) -> RunStats:
        """The sum of what every worker last reported.

        The peak of connected stations is the highest sum the reports showed at one time (or
        the highest single worker's peak, if more), not the sum of the workers' peaks.
        """
        total = RunStats.combined(worker.stats for worker in self._workers)
        total.stations_connected_peak = max(
            self._peak_connected, max(w.stats.stations_connected_peak for w in self._workers)
        )
        return total

    # -- running --------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        # Listening before anything starts, so that no signal finds a worker without a parent
        # that passes it on.
        with listening() as signals:
            return await self._run(signals)

    async def _run(self, signals: StopSignals) -> RunOutcome:
        collector = RunStatsCollector(lambda: [worker.stats for worker in self._workers])
        REGISTRY.register(collector)
        state_collector = FleetStateCollector(
            lambda: [worker.state for worker in self._workers if worker.state is not None],
            [site.name for site in self.scenario.sites],
        )
        REGISTRY.register(state_collector)
        self._wall_start = wall_start = time.perf_counter()
        csms_url = self.scenario.csms.url
        try:
            async with trio.open_nursery() as services:
                if signals.caught_before:
                    self._request_stop()  # stopped while loading: start nothing
                services.start_soon(self._forward_signals, signals)
                if csms_url is None and not self._stop_requested:
                    with self._starting:
                        csms_url = await services.start(self._run_embedded_csms)
                if csms_url is not None and not self._stop_requested:
                    await self._run_workers(services, csms_url)
                # The summary before the embedded CSMS is stopped: it has nothing to add.
                self._showing.cancel()
                with trio.move_on_after(1.0):
                    await self._progress_gone.wait()
                wall_s = time.perf_counter() - wall_start
                outcome = self._outcome(csms_url or "", wall_s, self._stop_requested)
                services.cancel_scope.cancel()
        finally:
            REGISTRY.unregister(collector)
            REGISTRY.unregister(state_collector)
        return outcome

    async def _run_workers(self, services: trio.Nursery, csms_url: str) -> None:
        """Start the workers and their companions (metrics, progress, overrun guard); return
        when every worker has ended."""
        if self.scenario.metrics_port is not None:
            start_metrics_server(self.scenario.metrics_port, self.console)
        if self.scenario.duration_s is not None:
            services.start_soon(self._stop_after_overrun, self.scenario.duration_s)
        if self.show_progress:
            progress = ProgressLine(self.combined, self.scenario.stations.count, self.console)
            services.start_soon(self._show_progress, progress)
        else:
            self._progress_gone.set()
        services.start_soon(self._watch.run, self._tell_workers_to_stop)
        async with trio.open_nursery() as running:
            for worker in self._workers:
                running.start_soon(self._run_worker, worker, csms_url)

    async def _show_progress(self, progress: ProgressLine) -> None:
        try:
            with self._showing:
                await progress.run()
        finally:
            self._progress_gone.set()

    async def _run_embedded_csms(self, task_status: trio.TaskStatus[str]) -> None:
        """Start the embedded CSMS's processes, report its URL, stop them when cancelled."""
        processes = processes_for_sockets(self.scenario.stations.count)
        command = list(self._csms_command(processes))
        # Its stdin is a pipe from this process: should this process be killed, the CSMS
        # sees the pipe close and stops (children.py).
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        assert process.stdout is not None
        output = lines(process.stdout)
        try:
            with trio.fail_after(60):
                first_line = await anext(output, b"")
            match = _CSMS_URL_LINE.search(first_line)
            if match is None:
                raise RuntimeError(
                    f"the embedded CSMS ({' '.join(command)}) did not start: it printed "
                    f"{first_line.decode(errors='replace')!r}"
                )
            url = match.group(1).decode()
            self.console.print(f"embedded CSMS on {url} ({processes} process(es))")
            task_status.started(url)
            # Its status lines are not wanted here; keep the pipe from filling up.
            async for _ in output:
                pass
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await stop_children([process], signal.SIGTERM, CSMS_STOP_GRACE_S)

    async def _run_worker(self, worker: _Worker, csms_url: str) -> None:
        if self._stop_requested:
            return  # the run stopped before this worker started: it never runs
        command = list(self._worker_command(worker.index, csms_url))
        # Its stdin is a pipe from this process, whose end tells the worker that its parent
        # is gone (children.py); nothing is written to it.
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        worker.process = process
        assert process.stdout is not None
        worker.reading.deadline = min(worker.reading.deadline, self._final_deadline)
        try:
            with worker.reading:
                async for line in lines(process.stdout):
                    self._take_report(worker, line)
                await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if worker.reading.cancelled_caught and process.returncode is None:
                    # Its time is up: after its final report, or at the stop's deadline.
                    worker.killed = True
                    process.kill()
                    await process.wait()
                else:
                    await stop_children([process], signal.SIGTERM, STOP_GRACE_S)
        self._check_ending(worker, process.returncode)

    def _take_report(self, worker: _Worker, line: bytes) -> None:
        try:
            message = orjson.loads(line)
            if "state" in message:
                worker.state = message["state"]
            if "stats" in message:
                worker.stats = RunStats.from_wire(message["stats"])
                connected = sum(w.stats.stations_connected for w in self._workers)
                self._peak_connected = max(self._peak_connected, connected)
            elif "final" in message:
                worker.stats = RunStats.from_wire(message["final"])
                worker.final = message
                if self._stopped_wall_s is None:
                    self._stopped_wall_s = time.perf_counter()
                # Its summary is in; it now closes its connections, and gets so long for it.
                deadline = trio.current_time() + EXIT_GRACE_S
                worker.reading.deadline = min(worker.reading.deadline, deadline)
            elif "ready" in message:
                worker.ready = True
                if self._workers_told_to_stop:
                    self._signal_worker(worker, signal.SIGTERM)
            elif "stopped_before_start" in message:
                worker.stopped_before_start = True
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.console.print(
                f"[red]error:[/red] worker {worker.index} wrote a line that is not a report "
                f"({exc}): {line[:200]!r}"
            )

    def _check_ending(self, worker: _Worker, returncode: int | None) -> None:
        if self._ended_as_asked(worker, returncode):
            return
        if worker.killed and worker.final is None and self._workers_told_to_stop:
            ids = self.scenario.stations
            self.cut_short[worker.index] = (
                f"worker {worker.index} (stations {ids.station_id(worker.block.start)} to "
                f"{ids.station_id(worker.block.stop - 1)}) sent no final report within "
                f"{FINAL_REPORT_WAIT_S:g} s of the stop and was killed; its counters from its "
                "last report (at most a second older) are in the totals, its EV sessions are not"
            )
            return
        if returncode is not None and returncode < 0:
            how = f"was killed by {signal.Signals(-returncode).name}"
        else:
            how = f"ended with exit code {returncode}"
        if worker.final is None:
            how += " before its final report"
        ids = self.scenario.stations
        died = WorkerDied(
            worker.index,
            ids.station_id(worker.block.start),
            ids.station_id(worker.block.stop - 1),
            how,
        )
        self.died.append(died)
        self.console.print(f"[red]error:[/red] {died}", highlight=False)

    def _ended_as_asked(self, worker: _Worker, returncode: int | None) -> bool:
        """Whether `worker` ended by finishing its run or by a stop, having lost nothing."""
        if worker.final is not None or worker.stopped_before_start:
            # Its last report is in: a stop signal that came after it (when the process was
            # all but over and had put back Python's default handler), or this process
            # killing it when it took too long to close its connections, cost nothing.
            return (
                returncode in _NORMAL_EXITS
                or returncode in _ENDED_BY_STOP_SIGNAL
                or (worker.killed and returncode == -signal.SIGKILL)
            )
        # Not ready: it was still loading, and ran no station.  This parent does not signal
        # such a worker, but a stop sent to every process at once (a service manager's) may
        # reach it first.
        return not worker.ready and self._stop_requested and returncode in _ENDED_BY_STOP_SIGNAL

    async def _forward_signals(self, signals: StopSignals) -> None:
        async for received in signals.counted():
            if received == 1:
                self._request_stop()
            else:
                self._signal_workers(signal.SIGKILL)

    def _request_stop(self) -> None:
        """The first stop signal: start nothing more, and ask every worker to stop."""
        if self._stop_requested:
            return
        self._stop_requested = True
        self.console.print(
            "stopping: the workers close their stations' connections (again to kill them)"
        )
        self._starting.cancel()
        self._tell_workers_to_stop()

    async def _stop_after_overrun(self, duration_s: float) -> None:
        """Workers end by themselves; one that overruns its duration is stopped, then killed."""
        stations = self.scenario.stations
        ramp_up_s = stations.count / stations.ramp_up_per_s
        await trio.sleep(duration_s + ramp_up_s + OVERRUN_GRACE_S)
        self.console.print("[red]error:[/red] workers overran the run's duration; stopping them")
        self._tell_workers_to_stop()
        await trio.sleep(STOP_GRACE_S)
        self._signal_workers(signal.SIGKILL)

    def _tell_workers_to_stop(self) -> None:
        """SIGTERM to every worker that is ready for it; the others get it with their ready
        line (`_take_report`), since before it the signal would kill them without a report."""
        if not self._workers_told_to_stop:
            self._stopped_wall_s = self._stopped_wall_s or time.perf_counter()
            self._final_deadline = trio.current_time() + FINAL_REPORT_WAIT_S
            for worker in self._workers:
                worker.reading.deadline = min(worker.reading.deadline, self._final_deadline)
        self._workers_told_to_stop = True
        for worker in self._workers:
            if worker.ready:
                self._signal_worker(worker, signal.SIGTERM)

    def _signal_workers(self, signum: int) -> None:
        for worker in self._workers:
            self._signal_worker(worker, signum)

    def _signal_worker(self, worker: _Worker, signum: int) -> None:
        process = worker.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

    # -- the end --------------------------------------------------------------------------

    def _summary(
        self, csms_url: str, wall_s: float, errors: list[str], worker_summaries: list[Any]
    ) -> dict[str, Any]:
        """The fleet's summary from the workers' counters and (final) summaries."""
        scenario = self.scenario
        summary = build_summary(
            self.combined(),
            scenario_name=scenario.name,
            stations_total=scenario.stations.count,
            wall_seconds=wall_s,
            simulated_seconds=max((s["simulated_seconds"] for s in worker_summaries), default=0.0),
            csms_url=csms_url,
            ocpp_version=scenario.ocpp_version,
            errors=errors,
        )
        summary["shard"] = None if self.shard is None else str(self.shard)
        summary["workers"] = len(self._workers)
        summary["workers_died"] = len(self.died)
        summary["ev_sessions"] = sum(s["ev_sessions"] for s in worker_summaries)
        summary["evs_turned_away"] = sum(s["evs_turned_away"] for s in worker_summaries)
        summary["evs_with_reservation"] = sum(
            s.get("evs_with_reservation", 0) for s in worker_summaries
        )
        registrations: dict[str, int] = {}
        for worker_summary in worker_summaries:
            for status, count in worker_summary.get("registrations", {}).items():
                registrations[status] = registrations.get(status, 0) + count
        summary["registrations"] = dict(sorted(registrations.items()))
        stopped = self._stopped_wall_s
        summary["stop"] = {
            "seconds": 0.0 if stopped is None else round(time.perf_counter() - stopped, 3),
            "cut_short": [self.cut_short[index] for index in sorted(self.cut_short)],
        }
        return summary

    def _live_summary(self) -> dict[str, Any]:
        """The summary of the counters the workers last reported, for the thresholds that
        abort a run; figures only the final reports carry (EV sessions) are 0 in it."""
        return self._summary("", time.perf_counter() - self._wall_start, [], [])

    def _outcome(self, csms_url: str, wall_s: float, interrupted: bool) -> RunOutcome:
        finals = [worker.final for worker in self._workers if worker.final is not None]
        worker_summaries = [final["summary"] for final in finals]
        errors = [str(died) for died in self.died]
        seen: set[str] = set()
        for summary in worker_summaries:
            for error in summary["errors"]:
                if error not in seen and len(seen) < 5:
                    seen.add(error)
                    errors.append(error)
        summary = self._summary(csms_url, wall_s, errors, worker_summaries)
        aborted = self._watch.aborted_by
        unreachable = bool(finals) and all(final["csms_unreachable"] for final in finals)
        # Workers stopped because a threshold failed report "interrupted"; the user did not.
        interrupted = interrupted or (
            aborted is None and any(final["interrupted"] for final in finals)
        )
        results = conclude(
            summary,
            self.thresholds,
            aborted_by=None if aborted is None else aborted.threshold,
            interrupted=interrupted,
        )
        publish(
            summary,
            results,
            self.console,
            summary_json_path=self.summary_json_path,
            junit_path=self.junit_path,
        )
        return RunOutcome(
            summary,
            unreachable,
            interrupted,
            workers_died=len(self.died),
            no_station_accepted=summary["no_station_accepted"],
            thresholds=tuple(results),
        )
