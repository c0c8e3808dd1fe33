"""A stop ends within `STOP_BOUND_S` with its summary: a run makes its summary at the stop,
before its stations close their connections, and the parent of workers waits for their final
reports only so long, then kills what is left and says what was cut short.

The fleet tests run `fleetsim run` as a subprocess with a few hundred stations over real
loopback sockets, wait until every station is booted (read from its Prometheus endpoint), send
SIGINT and time the summary file and the process's end.  The parent's deadlines are tested with
stand-in workers that hang.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import trio
from rich.console import Console

from fleetsim.simulator import workers
from fleetsim.simulator.run import RunOutcome
from fleetsim.simulator.scenario import load_scenario
from fleetsim.simulator.workers import WorkersRun

ROOT = Path(__file__).resolve().parents[1]
#: What the issue asks of a stop of any fleet: it ends, with its summary, within this.
STOP_BOUND_S = 10.0
_METRICS_LINE = re.compile(r"Prometheus metrics on (http://\S+/metrics)")


def _accepted(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    match = re.search(r'^fleetsim_stations\{state="accepted"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _run_and_interrupt(tmp_path: Path, stations: int, *extra: str) -> tuple[dict, float, float]:
    """`fleetsim run` of `stations` against its embedded CSMS, SIGINT once all are booted;
    the summary JSON and the seconds from the signal to the summary file and to the end."""
    summary_path = tmp_path / "summary.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetsim.cli",
            "run",
            str(ROOT / "scenarios" / "reference-load.yaml"),
            "--stations",
            str(stations),
            "--duration",
            "600",
            "--no-progress",
            "--metrics-port",
            "0",
            "--summary-json",
            str(summary_path),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        metrics_url = None
        while metrics_url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "fleetsim ended before it served its metrics"
            match = _METRICS_LINE.search(line)
            metrics_url = match.group(1) if match else None
        assert metrics_url is not None
        while _accepted(metrics_url) < stations:
            assert time.monotonic() < deadline, "the fleet did not boot within 60 s"
            time.sleep(0.1)
        signalled = time.monotonic()
        process.send_signal(signal.SIGINT)
        summary_after_s = None
        while process.poll() is None and time.monotonic() - signalled < 3 * STOP_BOUND_S:
            if summary_after_s is None and summary_path.exists():
                summary_after_s = time.monotonic() - signalled
            time.sleep(0.01)
        ended_after_s = time.monotonic() - signalled
        if summary_after_s is None and summary_path.exists():
            summary_after_s = ended_after_s
        assert process.poll() is not None, f"fleetsim still runs {ended_after_s:.0f} s after SIGINT"
        assert process.returncode == 130, process.stdout.read()
        assert summary_after_s is not None, "no summary was written"
        return json.loads(summary_path.read_text()), summary_after_s, ended_after_s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("workers_flag", [(), ("--workers", "2")], ids=["one process", "workers"])
def test_ctrl_c_ends_a_booted_fleet_with_its_summary_within_the_bound(
    tmp_path: Path, workers_flag: tuple[str, ...]
) -> None:
    summary, summary_after_s, ended_after_s = _run_and_interrupt(tmp_path, 300, *workers_flag)
    assert summary_after_s < STOP_BOUND_S
    assert ended_after_s < STOP_BOUND_S
    assert summary["stations_booted"] == 300
    assert summary["stop"]["cut_short"] == []
    assert 0 <= summary["stop"]["seconds"] < STOP_BOUND_S
    # What the stations did until the stop, not what closing them did: no reconnects, no
    # CALL counted as lost to our own shutdown.
    assert summary["connection_failures"] == 0
    assert summary["all_calls"]["errors"] == 0


# -- the parent's deadlines, with stand-in workers -------------------------------------------

#: A stand-in for `fleetsim run --worker`: it writes its ready line and one report of its
#: counters, then on SIGTERM either does nothing (`hangs`: a worker too busy to report) or
#: writes its final report and then does nothing (`hangs_after_final`: a worker slow to close
#: its connections).
HANGING_WORKER = """
import os, signal, sys, time
from pathlib import Path

import orjson
from fleetsim.simulator import stop_signals
from fleetsim.simulator.stats import RunStats

behaviour = sys.argv[1]
stats = RunStats()
for _ in range(5):
    stats.frame_sent()


def final(signum, frame):
    if behaviour == "hangs_after_final":
        summary = {"simulated_seconds": 1.0, "ev_sessions": 2, "evs_turned_away": 0,
                   "errors": [], "registrations": {}}
        line = {"final": stats.to_wire(), "summary": summary, "csms_unreachable": False,
                "interrupted": True}
        os.write(1, orjson.dumps(line) + b"\\n")


with stop_signals.caught(report_to=sys.stdout.buffer):
    signal.signal(signal.SIGTERM, final)
    sys.stdout.buffer.write(orjson.dumps({"stats": stats.to_wire()}) + b"\\n")
    sys.stdout.flush()
    Path(sys.argv[2]).touch()
    while True:
        time.sleep(1)
"""


@pytest.mark.parametrize("behaviour", ["hangs", "hangs_after_final"])
async def test_a_worker_that_does_not_end_is_killed_at_the_deadline_and_the_summary_says_so(
    tmp_path: Path, behaviour: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "FINAL_REPORT_WAIT_S", 1.0)
    monkeypatch.setattr(workers, "EXIT_GRACE_S", 0.5)
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml").with_overrides(
        stations=4, csms_url="ws://127.0.0.1:9/ocpp"
    )
    output = io.StringIO()

    def command(index: int, csms_url: str) -> list[str]:
        script = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{HANGING_WORKER}"
        return [sys.executable, "-c", script, behaviour, str(tmp_path / f"reported-{index}")]

    parent = WorkersRun(
        scenario,
        workers=2,
        worker_command=command,
        csms_command=lambda processes: pytest.fail("no embedded CSMS was asked for"),
        console=Console(file=output, width=300),
        show_progress=False,
    )
    outcomes: list[RunOutcome] = []
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            outcomes.append(await parent.run())

        nursery.start_soon(run)
        with trio.fail_after(60):
            while len(list(tmp_path.glob("reported-*"))) < 2:
                await trio.sleep(0.01)
        signalled = trio.current_time()
        os.kill(os.getpid(), signal.SIGTERM)
    stopped_s = trio.current_time() - signalled
    (outcome,) = outcomes
    summary = outcome.summary
    assert (outcome.interrupted, outcome.workers_died) == (True, 0), output.getvalue()
    assert summary["messages_sent"] == 10  # the last counters of both workers
    if behaviour == "hangs":
        assert stopped_s < 1.0 + 1.0
        assert len(summary["stop"]["cut_short"]) == 2
        assert summary["stop"]["cut_short"][0].startswith(
            "worker 0 (stations CP00001 to CP00002) sent no final report within 1 s of the "
            "stop and was killed; its counters from its last report"
        )
        assert "stop cut short after" in output.getvalue()
        assert summary["ev_sessions"] == 0
    else:
        assert stopped_s < 0.5 + 1.0
        assert summary["stop"]["cut_short"] == []
        assert summary["ev_sessions"] == 4
    assert "error" not in output.getvalue()
