"""CPU and memory of a whole fleetsim client at N stations on the reference load-test workload.

Where `roundtrip.py` measures one exchange through the stack, this measures a real run as a
user starts it: `fleetsim run scenarios/reference-load.yaml --csms URL --stations N` in a
process of its own, against a target in another process (so the target's CPU is not counted):

  target   `bench/target.py`'s `start_target` when that module exists (a cheaper target than
           the embedded CSMS), otherwise `python -m fleetsim.cli csms --port 0`.
  client   `python -m fleetsim.cli run SCENARIO --csms URL --stations N --no-progress
           --metrics-port 0`,
           observed from outside: its Prometheus endpoint for messages and station states,
           /proc/PID/stat for its CPU time and /proc/PID/status for its memory.

A run waits until every station is booted (the ramp-up), then a warm-up, then measures over
`--window` wall seconds: CALLs sent per second (WebSocket frames the stations sent, which on
this workload are their CALLs; the CSMS initiates nothing), the client's CPU in % of a core and
in CPU microseconds per CALL, its RSS in total and per station, and the target's CPU (a
saturated target shows as ~100 %).  CPU is measured as CPU time, so another busy process on
the machine changes the wall-clock figures but hardly the CPU per CALL.

    python bench/busy_fleet.py --stations 10000 --window 30 --runs 3

Profiling aids (each slows the client, so do not read their CPU figures as results):
`--py-spy FILE` records the client with py-spy during the first run's window (speedscope
format), and `--tracemalloc FILE` runs the client under tracemalloc and writes the top
allocation sites (by line and by file) as they stand after the warm-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import checkout
import procstat

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "reference-load.yaml"
RESULTS = ROOT / "bench" / "results" / "busy_fleet.json"
#: What the reference workload asks for; the target gives it at boot.
HEARTBEAT_INTERVAL_S = 60
_METRICS_LINE = re.compile(r"Prometheus metrics on (http://\S+/metrics)")
_SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


# -- the processes ---------------------------------------------------------------------------


class _LineReader:
    """Drains a child's stdout in a thread (a full pipe would stall the child) and keeps it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._drain, args=(process,), daemon=True)
        self._thread.start()

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = pattern.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.lines and self.lines[-1] == "" and not self._thread.is_alive():
                    break
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    break
                self._changed.wait(left_s)
        tail = "\n".join(self.lines[-20:])
        raise RuntimeError(f"no line matching {pattern.pattern!r} within {timeout_s} s:\n{tail}")


def _stop(process: subprocess.Popen[str], grace_s: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Target:
    """A running target: where stations connect, its processes, and how to stop it."""

    url: str
    pids: list[int]
    stop: Callable[[], None]

    def cpu_s(self) -> float:
        return sum(procstat.cpu_s(pid) for pid in self.pids)


def _embedded_target() -> Target:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetsim.cli",
            "csms",
            "--port",
            "0",
            "--heartbeat-interval",
            str(HEARTBEAT_INTERVAL_S),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = _LineReader(process)
    match = reader.wait_for(re.compile(r"embedded CSMS on (ws://\S+/ocpp)"), 60.0)
    return Target(match.group(1), [process.pid], lambda: _stop(process, 10.0))


def _bench_target() -> Target:
    """bench/target.py's responder (one process), through its `run_target` context manager."""
    module_path = ROOT / "bench" / "target.py"
    spec = importlib.util.spec_from_file_location("bench_target", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    stack = ExitStack()
    if hasattr(module, "run_target"):
        started = stack.enter_context(module.run_target(1, HEARTBEAT_INTERVAL_S))
        return Target(started.url, list(started.pids), stack.close)
    # Only the documented helper: it yields the URL; the process is the newest child.
    url = stack.enter_context(module.start_target(1, HEARTBEAT_INTERVAL_S))
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    return Target(str(url), [int(children[-1])], stack.close)


def _start_target(kind: str) -> tuple[str, Target]:
    """The cheaper target of bench/target.py when present (and asked for), else the CSMS."""
    if kind in ("auto", "target") and (ROOT / "bench" / "target.py").exists():
        return "bench/target.py", _bench_target()
    if kind == "target":
        raise SystemExit("bench/target.py does not exist (yet); use --target embedded")
    return "embedded CSMS", _embedded_target()


# -- Prometheus ------------------------------------------------------------------------------


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        match = _SAMPLE_LINE.match(line)
        if match is None:
            continue
        labels = frozenset(_LABEL.findall(match.group(2) or ""))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def _total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **want: str
) -> float:
    return sum(
        value
        for (metric, labels), value in samples.items()
        if metric == name and all((k, v) in labels for k, v in want.items())
    )


@dataclass
class _Point:
    """What the client had done at one instant."""

    wall_s: float
    client_cpu_s: float
    client_system_s: float
    target_cpu_s: float
    frames_sent: float
    calls_done: float
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(repr=False)


def _point(metrics_url: str, client_pid: int, target: Target) -> _Point:
    # CPU first and last around the scrape, so the scrape's own cost falls half in and half out.
    wall_s = time.monotonic()
    user_s, system_s = procstat.tree_cpu_split_s(client_pid)
    target_cpu_s = target.cpu_s()
    samples = _scrape(metrics_url)
    return _Point(
        wall_s,
        user_s + system_s,
        system_s,
        target_cpu_s,
        _total(samples, "fleetsim_websocket_messages_total", direction="sent"),
        _total(samples, "fleetsim_ocpp_messages_total", direction="station_to_csms"),
        samples,
    )


def _histogram_p(
    before: dict[tuple[str, frozenset[tuple[str, str]]], float],
    after: dict[tuple[str, frozenset[tuple[str, str]]], float],
    fraction: float,
) -> float | None:
    """Upper bucket bound (ms) under which `fraction` of the window's CALLs completed."""
    name = "fleetsim_ocpp_call_duration_seconds_bucket"
    by_le: dict[float, float] = {}
    for (metric, labels), value in after.items():
        if metric != name:
            continue
        le = dict(labels)["le"]
        bound = float("inf") if le == "+Inf" else float(le)
        by_le[bound] = by_le.get(bound, 0.0) + value - before.get((metric, labels), 0.0)
    if not by_le or by_le[max(by_le)] <= 0:
        return None
    total = by_le[max(by_le)]
    for bound in sorted(by_le):
        if by_le[bound] >= fraction * total:
            return bound * 1000
    return None


# -- one run -----------------------------------------------------------------------------------


@contextmanager
def cpu_hog(cpu: int = 0) -> Iterator[subprocess.Popen[bytes]]:
    """Another process keeping one core busy (a Python busy loop pinned to core `cpu`), as on
    a shared CI machine; ended on exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        stdin=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def measure_stop(
    process: subprocess.Popen[str], summary_path: Path, limit_s: float = 60.0
) -> dict[str, Any]:
    """SIGTERM the client, as a service manager or CI's timeout would; seconds until its
    summary file appears and until the process (tree) ends."""
    signalled_s = time.monotonic()
    process.send_signal(signal.SIGTERM)
    summary_after_s = None
    while process.poll() is None and time.monotonic() - signalled_s < limit_s:
        if summary_after_s is None and summary_path.exists():
            summary_after_s = time.monotonic() - signalled_s
        time.sleep(0.02)
    ended = process.poll() is not None
    stop_s = time.monotonic() - signalled_s
    if summary_after_s is None and summary_path.exists():
        summary_after_s = stop_s
    written = summary_path.exists()
    figures: dict[str, Any] = {
        "stop_s": stop_s if ended else None,
        "stop_ended_within_limit": ended,
        "summary_written": written,
        "summary_after_stop_s": summary_after_s,
    }
    if written:
        summary = json.loads(summary_path.read_text())
        figures["summary_stations_booted"] = summary.get("stations_booted")
        figures["summary_stop"] = summary.get("stop")
        figures["summary_ramp"] = ramp = summary.get("ramp")
        if ramp is not None:
            # Exact, where the scrapes (summed over workers, a finished one reporting 0) are not.
            figures["ramp_lowest_rate_per_s"] = ramp["lowest_per_s"]
    return figures


@contextmanager
def _client(
    target_url: str,
    stations: int,
    scenario: Path,
    tracemalloc_path: Path | None,
    client_root: Path,
    client_args: list[str],
) -> Iterator[tuple[subprocess.Popen[str], _LineReader]]:
    cli_args = [
        "run",
        str(scenario),
        "--csms",
        target_url,
        "--stations",
        str(stations),
        "--duration",
        "100000",
        "--no-progress",
        "--metrics-port",
        "0",
        *client_args,
    ]
    if tracemalloc_path is None:
        command = [*checkout.command(client_root), *cli_args]
    else:
        command = [sys.executable, __file__, "--traced-client", str(tracemalloc_path), *cli_args]
    process = subprocess.Popen(
        command,
        cwd=client_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=checkout.environment(client_root, COLUMNS="200"),
    )
    try:
        yield process, _LineReader(process)
    finally:
        _stop(process)


def one_run(
    target: Target,
    stations: int,
    *,
    scenario: Path,
    warmup_s: float,
    window_s: float,
    ramp_timeout_s: float,
    py_spy_path: Path | None = None,
    tracemalloc_path: Path | None = None,
    client_root: Path = ROOT,
    client_args: Sequence[str] = (),
    stop_figures: bool = False,
) -> dict[str, Any]:
    """Measure one client of `stations` stations against `target` (extra `fleetsim run` flags
    in `client_args`, such as `--workers 2`); CPU and memory are of the client's whole
    process tree.  Ramp-up counts from the moment the client process is started.

    With `stop_figures` a ramp that does not finish within `ramp_timeout_s` is a figure, not
    an error (how far it got, and what it cost), and the run ends with a measured stop
    (`measure_stop`): the busy-machine case."""
    launched_s = time.monotonic()
    summary_path = Path(tempfile.mkdtemp(prefix="fleetsim-stop-")) / "summary.json"
    if stop_figures:
        client_args = [*client_args, "--summary-json", str(summary_path)]
    with _client(
        target.url, stations, scenario, tracemalloc_path, client_root, list(client_args)
    ) as (
        process,
        reader,
    ):
        metrics_url = reader.wait_for(_METRICS_LINE, 120.0).group(1)
        ramp = _RampWatch()
        while True:
            if process.poll() is not None:
                raise RuntimeError("the client ended early:\n" + "\n".join(reader.lines[-20:]))
            samples = _scrape(metrics_url)
            ramp.sample(samples, process.pid)
            if _total(samples, "fleetsim_stations", state="accepted") >= stations:
                break
            if time.monotonic() - launched_s > ramp_timeout_s:
                booted = _total(samples, "fleetsim_stations", state="accepted")
                if stop_figures:
                    return {
                        "stations": stations,
                        "ramp_up_s": None,
                        "stations_accepted_at_ramp_timeout": booted,
                        "ramp_timeout_s": ramp_timeout_s,
                        **ramp.figures(samples),
                        **measure_stop(process, summary_path),
                    }
                raise RuntimeError(
                    f"only {booted:.0f} of {stations} stations booted within {ramp_timeout_s:g} s"
                )
            time.sleep(0.25)
        ramp_up_s = time.monotonic() - launched_s
        ramp_figures = ramp.figures(samples)
        ramp_rss_kb = procstat.tree_memory_kb(process.pid)["VmRSS"]
        time.sleep(warmup_s)
        if tracemalloc_path is not None:
            process.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
        profiler = None
        if py_spy_path is not None:
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    f"{window_s:.0f}",
                    "--format",
                    "speedscope",
                    "--output",
                    str(py_spy_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        before = _point(metrics_url, process.pid, target)
        time.sleep(window_s)
        after = _point(metrics_url, process.pid, target)
        memory = procstat.tree_memory_kb(process.pid)
        if profiler is not None:
            profiler.wait(timeout=window_s + 60)
        accepted = _total(after.samples, "fleetsim_stations", state="accepted")
        stopped = measure_stop(process, summary_path) if stop_figures else {}
    wall_s = after.wall_s - before.wall_s
    cpu_s = after.client_cpu_s - before.client_cpu_s
    frames = after.frames_sent - before.frames_sent
    return {
        "stations": stations,
        "stations_accepted_at_end": accepted,
        "ramp_up_s": ramp_up_s,
        "window_s": wall_s,
        "calls_per_s": frames / wall_s,
        "calls_completed_per_s": (after.calls_done - before.calls_done) / wall_s,
        "calls_per_s_per_station": frames / wall_s / stations,
        "client_cpu_percent": cpu_s / wall_s * 100,
        "cpu_us_per_call": cpu_s / max(frames, 1) * 1e6,
        "system_cpu_us_per_call": (after.client_system_s - before.client_system_s)
        / max(frames, 1)
        * 1e6,
        "rss_mb": memory["VmRSS"] / 1024,
        "rss_kb_per_station": memory["VmRSS"] / stations,
        "rss_after_ramp_up_mb": ramp_rss_kb / 1024,
        "peak_rss_mb": memory["VmHWM"] / 1024,
        "target_cpu_percent": (after.target_cpu_s - before.target_cpu_s) / wall_s * 100,
        "p50_ms_bucket": _histogram_p(before.samples, after.samples, 0.50),
        "p95_ms_bucket": _histogram_p(before.samples, after.samples, 0.95),
        "p99_ms_bucket": _histogram_p(before.samples, after.samples, 0.99),
        "connection_failures": sum(
            _total(after.samples, "fleetsim_connection_attempts_total", outcome=outcome)
            for outcome in ("refused", "rejected", "timeout")
        ),
        **ramp_figures,
        **stopped,
    }


class _RampWatch:
    """What the ramp cost, from the scrapes taken while it went on: connections reopened (lost
    and opened again, and failed attempts) in the worst minute, the peak RSS of the client's
    tree, and the lowest ramp rate and most handshakes in flight it reported (0 from a client
    without those gauges).  The lowest rate is the fleet's sum while the ramp ran, so it reads
    low once one worker has started all its stations; a run's summary, when written, gives the
    exact one (`measure_stop`)."""

    def __init__(self) -> None:
        self._reopened: list[tuple[float, float]] = []
        self.peak_rss_kb = 0
        self.lowest_rate_per_s: float | None = None
        self.most_in_flight = 0.0

    def sample(
        self, samples: dict[tuple[str, frozenset[tuple[str, str]]], float], pid: int
    ) -> None:
        reopened = _total(samples, "fleetsim_reconnects_total") + sum(
            _total(samples, "fleetsim_connection_attempts_total", outcome=outcome)
            for outcome in ("refused", "rejected", "timeout")
        )
        self._reopened.append((time.monotonic(), reopened))
        self.peak_rss_kb = max(self.peak_rss_kb, procstat.tree_memory_kb(pid)["VmRSS"])
        rate = _total(samples, "fleetsim_ramp_up_stations_per_second")
        if rate > 0:
            self.lowest_rate_per_s = min(self.lowest_rate_per_s or rate, rate)
        self.most_in_flight = max(
            self.most_in_flight, _total(samples, "fleetsim_handshakes_in_flight")
        )

    def figures(
        self, samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    ) -> dict[str, Any]:
        worst_minute = 0.0
        for index, (at_s, count) in enumerate(self._reopened):
            before = [c for t, c in self._reopened[: index + 1] if at_s - t <= 60.0]
            worst_minute = max(worst_minute, count - before[0])
        return {
            "reconnects": _total(samples, "fleetsim_reconnects_total"),
            "connection_timeouts": _total(
                samples, "fleetsim_connection_attempts_total", outcome="timeout"
            ),
            "reopened_in_worst_minute": worst_minute,
            "ramp_peak_rss_mb": self.peak_rss_kb / 1024,
            "ramp_lowest_rate_per_s": self.lowest_rate_per_s,
            "ramp_most_handshakes_in_flight": self.most_in_flight,
        }


# -- the traced client (--tracemalloc) ----------------------------------------------------------


def _traced_client(output: Path, cli_args: list[str]) -> None:
    """Run `fleetsim CLI_ARGS` under tracemalloc; SIGUSR1 writes the top allocation sites."""
    import tracemalloc

    tracemalloc.start(1)

    def dump(signum: int, frame: Any) -> None:
        import gc

        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        current, peak = tracemalloc.get_traced_memory()
        with output.open("w") as out:
            out.write(f"traced now {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB\n\n")
            for group in ("lineno", "filename"):
                stats = snapshot.statistics(group)
                out.write(f"-- top 60 by {group} --\n")
                for stat in stats[:60]:
                    out.write(
                        f"{stat.size / 1e6:9.2f} MB {stat.count:9d} blocks  {stat.traceback}\n"
                    )
                out.write("\n")

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["fleetsim", *cli_args]
    from fleetsim.cli.main import main

    main()


# -- the driver --------------------------------------------------------------------------------


_COLUMNS = (
    ("stations", "stations", "{:.0f}"),
    ("calls_per_s", "CALLs/s", "{:.0f}"),
    ("client_cpu_percent", "cpu %", "{:.1f}"),
    ("cpu_us_per_call", "µs/CALL", "{:.1f}"),
    ("rss_mb", "RSS MB", "{:.0f}"),
    ("rss_kb_per_station", "KB/stn", "{:.1f}"),
    ("ramp_up_s", "ramp s", "{:.1f}"),
    ("target_cpu_percent", "target %", "{:.0f}"),
    ("p99_ms_bucket", "p99 ms≤", "{:.0f}"),
)


def _line(values: dict[str, Any]) -> str:
    cells = []
    for key, title, form in _COLUMNS:
        value = values.get(key)
        cells.append(f"{'-' if value is None else form.format(value):>{max(len(title), 8)}}")
    return " ".join(cells)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--traced-client":
        _traced_client(Path(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0, help="measured wall seconds")
    parser.add_argument("--warmup", type=float, default=45.0, help="seconds after ramp-up")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported")
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--target", choices=("auto", "embedded", "target"), default="auto")
    parser.add_argument("--ramp-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--label", default="", help="a name for this configuration")
    parser.add_argument("--py-spy", type=Path, help="speedscope profile of the first window")
    parser.add_argument("--tracemalloc", type=Path, help="allocation sites after the warm-up")
    parser.add_argument(
        "--client-root",
        type=Path,
        default=ROOT,
        help="checkout whose fleetsim runs as the client (a worktree of another commit, to "
        "compare before and after against the same target)",
    )
    args = parser.parse_args()

    header = " ".join(f"{title:>{max(len(title), 8)}}" for _, title, _ in _COLUMNS)
    print(header, flush=True)
    runs: list[dict[str, Any]] = []
    target_name = ""
    for number in range(args.runs):
        # A fresh target per run: no run inherits a backlog or state from the one before.
        target_name, target = _start_target(args.target)
        try:
            result = one_run(
                target,
                args.stations,
                scenario=args.scenario,
                warmup_s=args.warmup,
                window_s=args.window,
                ramp_timeout_s=args.ramp_timeout,
                py_spy_path=args.py_spy if number == 0 else None,
                tracemalloc_path=args.tracemalloc if number == 0 else None,
                client_root=args.client_root.resolve(),
            )
        finally:
            target.stop()
        runs.append(result)
        print(_line(result) + f"   run {number + 1}", flush=True)
    medians = {
        key: statistics.median(run[key] for run in runs)
        for key in runs[0]
        if all(isinstance(run[key], (int, float)) for run in runs)
    }
    print(_line(medians) + f"   median of {len(runs)}, target: {target_name}")
    report = {
        "label": args.label,
        "scenario": str(
            args.scenario.relative_to(ROOT) if args.scenario.is_relative_to(ROOT) else args.scenario
        ),
        "target": target_name,
        "client_root": str(args.client_root.resolve()),
        "machine_cpus": os.cpu_count(),
        "warmup_s": args.warmup,
        "window_s": args.window,
        "median": medians,
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
