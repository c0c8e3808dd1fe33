"""`make bench`: the scale benchmark, every workload of it, with one table and one JSON file.

Each workload runs for a bounded time, `--runs` times (3 by default; medians are reported),
against `bench/target.py`, a responder that costs a small fraction of what the fleet costs, so
the figures are fleetsim's:

  nominal      the reference workload (scenarios/reference-load.yaml) at 1,000 stations: the
               CALLs per second per station that the workload offers when nothing is saturated.
               Its stations ramp up over the same seconds as the largest fleet's, so both
               fleets' transaction loops are spread alike over the measured window.
  reference    the same at 10,000 stations in one process: ramp-up seconds, CALLs/s,
               round trips, CPU (% of a core, µs per CALL), RSS (MB, KB per station).
  largest      the same at 30,000 stations, over `--workers 2` and two local source addresses
               (127.0.0.2, 127.0.0.3) against a target of two processes: does it hold 95 % of
               the nominal rate?
  half load    15,000 stations (half the largest): the client's p99 round trip against the
               target's own p99 processing time; the difference is what the simulator adds.
  back to back bench/roundtrip.py at 1,000 stations: CPU per round trip of fleetsim, of
               fleetsim with CPython's default collector settings, of a bare trio-websocket
               client and of the asyncio `websockets` + `ocpp` ChargePoint baseline, side by
               side in one run.
  idle         bench/roundtrip.py's idle mode at 1,000 booted stations: CPU between heartbeats.
  busy         the largest fleet again (30,000 stations over `--workers 2` and two source
               addresses) while another process keeps one core busy (a Python busy loop pinned
               to core 0, ended after the run), as on a shared CI machine: the ramp may take
               longer, but must not collapse into a reconnect storm.  Its figures: ramp-up
               seconds (or how many stations booted by the ramp timeout), connections reopened
               (reconnects and failed attempts, in the worst minute), the lowest ramp rate and
               most handshakes in flight the fleet reported, peak RSS, and then a SIGTERM:
               seconds until the summary file is written and until the processes end.
               `--client-root` runs another checkout's fleetsim (before and after a change).

The round-trip percentiles of the fleet workloads come from the Prometheus histogram over the
window (bucket upper bounds, as a Grafana panel computes them: "p99 ≤ 5 ms").

CPU figures are only worth as much as the machine under them, and the same machine can run
three times slower on another day.  So every run first measures a reference, the CPU a bare
trio-websocket client spends per round trip (bench/roundtrip.py's `bare` mode, at the
back-to-back size), and every CPU figure is printed beside it and as a ratio to it: µs per
CALL or per round trip divided by the reference's µs per round trip, and a CPU share as the
bare round trips per second that the same CPU would have paid for.  The ratios hold from one
day (and machine) to the next where the absolute figures do not.

    python bench/scale.py                 # the whole benchmark, about 30 minutes
    python bench/scale.py --smoke         # every workload small and short, one run (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import busy_fleet
from target import run_target

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.json"
#: The share of the nominal message rate the largest fleet must hold.
HOLD_SHARE = 0.95


@dataclass(frozen=True)
class FleetWorkload:
    name: str
    stations: int
    workers: int = 1
    source_addresses: str | None = None
    target_processes: int = 1
    #: Ramp up over this many wall seconds instead of at the scenario's rate (None: as written).
    ramp_over_s: float | None = None
    #: Run beside a process that keeps one core busy, and measure the stop (the busy case).
    busy: bool = False
    #: Give up waiting for the ramp after this many seconds (None: 120 s, or 1 s per 100
    #: stations if longer).  The busy case reports how far it got instead of failing.
    ramp_timeout_s: float | None = None


@dataclass(frozen=True)
class Plan:
    nominal: FleetWorkload
    reference: FleetWorkload
    largest: FleetWorkload
    half_load: FleetWorkload
    busy: FleetWorkload
    warmup_s: float
    window_s: float
    roundtrip_stations: int
    roundtrip_window_s: float
    runs: int


FULL = Plan(
    nominal=FleetWorkload("nominal", 1_000, ramp_over_s=30.0),
    reference=FleetWorkload("reference", 10_000),
    largest=FleetWorkload(
        "largest", 30_000, workers=2, source_addresses="127.0.0.2-127.0.0.3", target_processes=2
    ),
    half_load=FleetWorkload("half load", 15_000, workers=2, target_processes=2),
    busy=FleetWorkload(
        "busy",
        30_000,
        workers=2,
        source_addresses="127.0.0.2-127.0.0.3",
        target_processes=2,
        busy=True,
        # Over six times the 37 s of the same fleet on an idle machine: half the CPU may
        # double it.
        ramp_timeout_s=240.0,
    ),
    warmup_s=30.0,
    window_s=60.0,
    roundtrip_stations=1_000,
    roundtrip_window_s=5.0,
    runs=3,
)
SMOKE = Plan(
    nominal=FleetWorkload("nominal", 100, ramp_over_s=0.3),
    reference=FleetWorkload("reference", 200),
    largest=FleetWorkload(
        "largest", 300, workers=2, source_addresses="127.0.0.2-127.0.0.3", target_processes=2
    ),
    half_load=FleetWorkload("half load", 150, workers=2, target_processes=2),
    busy=FleetWorkload(
        "busy",
        300,
        workers=2,
        source_addresses="127.0.0.2-127.0.0.3",
        target_processes=2,
        busy=True,
    ),
    warmup_s=2.0,
    window_s=4.0,
    roundtrip_stations=50,
    roundtrip_window_s=1.0,
    runs=1,
)


def _largest(stations: int) -> FleetWorkload:
    """A largest fleet of `stations`: a worker, a source address and a target process per
    15,000 stations (at least two of each), well inside a process's 20,000 open files and a
    source address's 28,232 ephemeral ports."""
    parts = max(2, math.ceil(stations / 15_000))
    return FleetWorkload(
        "largest",
        stations,
        workers=parts,
        source_addresses=f"127.0.0.2-127.0.0.{1 + parts}",
        target_processes=parts,
    )


def _scenario_for(workload: FleetWorkload, directory: Path) -> Path:
    """The reference scenario, or a copy of it whose ramp-up lasts `workload.ramp_over_s`."""
    if workload.ramp_over_s is None:
        return busy_fleet.SCENARIO
    document = yaml.safe_load(busy_fleet.SCENARIO.read_text())
    document["stations"]["ramp_up_per_s"] = workload.stations / workload.ramp_over_s
    path = directory / f"{workload.name.replace(' ', '-')}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _fleet_run(workload: FleetWorkload, plan: Plan, client_root: Path = ROOT) -> dict[str, Any]:
    client_args = []
    if workload.workers > 1:
        client_args += ["--workers", str(workload.workers)]
    if workload.source_addresses is not None:
        client_args += ["--source-address", workload.source_addresses]
    with (
        tempfile.TemporaryDirectory(prefix="fleetsim-bench-") as directory,
        run_target(workload.target_processes, busy_fleet.HEARTBEAT_INTERVAL_S) as target,
        busy_fleet.cpu_hog() if workload.busy else contextlib.nullcontext(),
    ):
        result = busy_fleet.one_run(
            busy_fleet.Target(target.url, target.pids, lambda: None),
            workload.stations,
            scenario=_scenario_for(workload, Path(directory)),
            # The busy case measures the ramp and the stop; a short window shows the fleet runs.
            warmup_s=min(plan.warmup_s, 10.0) if workload.busy else plan.warmup_s,
            window_s=min(plan.window_s, 20.0) if workload.busy else plan.window_s,
            ramp_timeout_s=workload.ramp_timeout_s or max(120.0, workload.stations / 100),
            client_args=client_args,
            client_root=client_root,
            stop_figures=workload.busy,
        )
    processing = [s["processing_p99_us_at_most"] for s in target.summaries]
    result["target_processing_p99_us_at_most"] = max(
        (value for value in processing if value is not None), default=None
    )
    return result


def _roundtrip(plan: Plan, modes: str) -> dict[str, Any]:
    """bench/roundtrip.py in its own process, its JSON read back."""
    output = ROOT / "bench" / "results" / f"scale-roundtrip-{modes.replace(',', '-')}.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "roundtrip.py"),
            "--stations",
            str(plan.roundtrip_stations),
            "--runs",
            str(plan.runs),
            "--window",
            str(plan.roundtrip_window_s),
            "--warmup",
            str(min(2.0, plan.roundtrip_window_s)),
            "--modes",
            modes,
            "--json",
            str(output),
        ],
        check=True,
        cwd=ROOT,
        timeout=3600,
    )
    return dict(json.loads(output.read_text())["cases"][0])


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(run[key] for run in runs)
        for key in runs[0]
        if all(isinstance(run.get(key), (int, float)) for run in runs)
    }


def _repeat(plan: Plan, measure: Callable[[], dict[str, Any]], label: str) -> dict[str, Any]:
    runs = []
    for number in range(plan.runs):
        started_s = time.monotonic()
        runs.append(measure())
        print(f"  {label}: run {number + 1} took {time.monotonic() - started_s:.0f} s", flush=True)
    return {"median": _medians(runs), "runs": runs}


_FLEET_COLUMNS = (
    ("stations", "stations", "{:,.0f}"),
    ("stations_accepted_at_end", "connected", "{:,.0f}"),
    ("ramp_up_s", "ramp s", "{:.1f}"),
    ("connection_failures", "failed", "{:.0f}"),
    ("calls_per_s", "CALLs/s", "{:,.0f}"),
    ("p50_ms_bucket", "p50 ms≤", "{:g}"),
    ("p95_ms_bucket", "p95 ms≤", "{:g}"),
    ("p99_ms_bucket", "p99 ms≤", "{:g}"),
    ("client_cpu_percent", "CPU %", "{:.1f}"),
    ("client_cpu_bare_round_trips_per_s", "≙ bare rt/s", "{:,.0f}"),
    ("cpu_us_per_call", "µs/CALL", "{:.0f}"),
    ("cpu_us_per_call_over_bare", "x bare", "{:.2f}"),
    ("rss_mb", "RSS MB", "{:,.0f}"),
    ("rss_kb_per_station", "KB/station", "{:.1f}"),
)


def _fleet_table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    widths = [max(len(title), 9) for _, title, _ in _FLEET_COLUMNS]
    lines = [
        f"{'workload':<10} "
        + " ".join(f"{title:>{w}}" for (_, title, _), w in zip(_FLEET_COLUMNS, widths, strict=True))
    ]
    for name, values in rows:
        cells = []
        for (key, _, form), width in zip(_FLEET_COLUMNS, widths, strict=True):
            value = values.get(key)
            cells.append(f"{'-' if value is None else form.format(value):>{width}}")
        lines.append(f"{name:<10} " + " ".join(cells))
    return lines


WORKLOADS = ("nominal", "reference", "largest", "half_load", "back_to_back", "idle", "busy")
#: The workloads `python bench/scale.py` runs without `--only`: the busy case, which measures
#: robustness rather than speed, is asked for by name.
DEFAULT_WORKLOADS = WORKLOADS[:-1]

_BUSY_COLUMNS = (
    ("stations", "stations", "{:,.0f}"),
    ("ramp_up_s", "ramp s", "{:.1f}"),
    ("stations_accepted_at_ramp_timeout", "booted@timeout", "{:,.0f}"),
    ("reopened_in_worst_minute", "reopened/min", "{:,.0f}"),
    ("connection_timeouts", "timeouts", "{:,.0f}"),
    ("ramp_lowest_rate_per_s", "lowest ramp/s", "{:,.0f}"),
    ("ramp_most_handshakes_in_flight", "in flight", "{:,.0f}"),
    ("ramp_peak_rss_mb", "RSS MB", "{:,.0f}"),
    ("summary_after_stop_s", "summary s", "{:.1f}"),
    ("stop_s", "stop s", "{:.1f}"),
    ("summary_written", "summary", "{}"),
)


def _busy_table(result: dict[str, Any]) -> list[str]:
    widths = [max(len(title), 9) for _, title, _ in _BUSY_COLUMNS]
    header = " ".join(
        f"{title:>{w}}" for (_, title, _), w in zip(_BUSY_COLUMNS, widths, strict=True)
    )
    cells = []
    for (key, _, form), width in zip(_BUSY_COLUMNS, widths, strict=True):
        value = result.get(key)
        cells.append(f"{'-' if value is None else form.format(value):>{width}}")
    return [header, " ".join(cells)]


def _bare_reference(plan: Plan) -> dict[str, Any]:
    """The machine's yardstick for this run: a bare trio-websocket client's CPU per round trip,
    measured now, so that every CPU figure can be stated as a ratio to it."""
    measured = _roundtrip(plan, "bare")["bare"]
    return {
        "stations": plan.roundtrip_stations,
        "cpu_us_per_round_trip": measured["median"]["cpu_us_per_round_trip"],
        "runs": measured["runs"],
    }


def _over_bare(cpu_us: float, bare_us: float) -> float:
    """µs of CPU per CALL or round trip, as a multiple of the bare client's."""
    return cpu_us / bare_us


def _bare_round_trips_per_s(cpu_percent: float, bare_us: float) -> float:
    """A share of a core (%), as the bare round trips per second that CPU would pay for."""
    return cpu_percent / 100 * 1e6 / bare_us


def _relate_fleet_figures(median: dict[str, Any], bare_us: float) -> None:
    """Add the fleet workload's CPU figures as ratios to the reference, beside the figures."""
    median["cpu_us_per_call_over_bare"] = _over_bare(median["cpu_us_per_call"], bare_us)
    median["client_cpu_bare_round_trips_per_s"] = _bare_round_trips_per_s(
        median["client_cpu_percent"], bare_us
    )


def _verdicts(report: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The goals, each from the workloads it needs (those not run are left out)."""
    bare_us = report["bare_reference"]["cpu_us_per_round_trip"]
    verdicts: dict[str, Any] = {"bare_reference_cpu_us_per_round_trip": bare_us}
    if "reference" in report:
        reference = report["reference"]["median"]
        verdicts["reference_cpu_percent"] = reference["client_cpu_percent"]
        verdicts["reference_cpu_bare_round_trips_per_s"] = reference[
            "client_cpu_bare_round_trips_per_s"
        ]
        verdicts["reference_cpu_us_per_call"] = reference["cpu_us_per_call"]
        verdicts["reference_cpu_us_per_call_over_bare"] = reference["cpu_us_per_call_over_bare"]
        verdicts["reference_rss_mb"] = reference["rss_mb"]
        verdicts["reference_ramp_up_s"] = reference["ramp_up_s"]
        verdicts["reference_connection_failures"] = reference["connection_failures"]
    if "nominal" in report and "largest" in report:
        nominal = report["nominal"]["median"]["calls_per_s_per_station"]
        held = report["largest"]["median"]["calls_per_s_per_station"] / nominal
        verdicts["largest_share_of_nominal_rate"] = held
        verdicts["largest_holds"] = held >= HOLD_SHARE
    if "half_load" in report:
        half = report["half_load"]["median"]
        processing_ms = (half.get("target_processing_p99_us_at_most") or 0) / 1000
        verdicts["half_load_p99_ms_at_most"] = half.get("p99_ms_bucket")
        verdicts["half_load_target_processing_p99_ms_at_most"] = processing_ms
        verdicts["half_load_latency_overhead_ms_at_most"] = (
            half.get("p99_ms_bucket") or 0
        ) - processing_ms
    if "back_to_back" in report:
        cases = report["back_to_back"]
        fleetsim_us = cases["fleetsim"]["median"]["cpu_us_per_round_trip"]
        case_bare_us = cases["bare"]["median"]["cpu_us_per_round_trip"]
        baseline_us = cases["baseline"]["median"]["cpu_us_per_round_trip"]
        verdicts["cpu_us_per_round_trip"] = {
            "bare": case_bare_us,
            "fleetsim": fleetsim_us,
            "baseline": baseline_us,
        }
        verdicts["fleetsim_default_gc_cpu_us_per_round_trip"] = cases["fleetsim-default-gc"][
            "median"
        ]["cpu_us_per_round_trip"]
        verdicts["cpu_per_round_trip_over_bare_reference"] = {
            name: _over_bare(cases[name]["median"]["cpu_us_per_round_trip"], bare_us)
            for name in ("bare", "fleetsim", "fleetsim-default-gc", "baseline")
        }
        verdicts["fleetsim_over_bare_cpu_per_round_trip"] = fleetsim_us / case_bare_us
        verdicts["baseline_over_fleetsim_cpu_per_round_trip"] = baseline_us / fleetsim_us
    if "idle" in report:
        idle_percent = report["idle"]["idle"]["median"]["idle_cpu_percent"]
        idle_per_1000 = idle_percent * 1000 / plan.roundtrip_stations
        verdicts["idle_cpu_percent_per_1000_stations"] = idle_per_1000
        verdicts["idle_cpu_bare_round_trips_per_s_per_1000_stations"] = _bare_round_trips_per_s(
            idle_per_1000, bare_us
        )
    return verdicts


def _print_verdicts(verdicts: dict[str, Any], plan: Plan) -> None:
    bare_us = verdicts["bare_reference_cpu_us_per_round_trip"]
    if "reference_cpu_percent" in verdicts:
        print(
            f"reference workload: {verdicts['reference_cpu_percent']:.1f} % of a core "
            f"(≙ {verdicts['reference_cpu_bare_round_trips_per_s']:,.0f} bare round trips/s), "
            f"{verdicts['reference_cpu_us_per_call']:.0f} µs per CALL "
            f"({verdicts['reference_cpu_us_per_call_over_bare']:.2f}x bare)"
        )
    if "largest_share_of_nominal_rate" in verdicts:
        held = verdicts["largest_share_of_nominal_rate"]
        print(
            f"largest fleet: {held:.1%} of the nominal rate per station "
            f"({'holds' if held >= HOLD_SHARE else 'does not hold'} {HOLD_SHARE:.0%})"
        )
    if "half_load_p99_ms_at_most" in verdicts:
        print(
            f"half load: client p99 ≤ {verdicts['half_load_p99_ms_at_most']} ms, target "
            f"processing p99 ≤ {verdicts['half_load_target_processing_p99_ms_at_most']:.3f} ms: "
            f"the simulator adds at most {verdicts['half_load_latency_overhead_ms_at_most']:.1f} ms"
        )
    if "cpu_us_per_round_trip" in verdicts:
        us = verdicts["cpu_us_per_round_trip"]
        print(
            f"back to back at {plan.roundtrip_stations:,} stations, CPU µs per round trip: bare "
            f"{us['bare']:.1f}, fleetsim {us['fleetsim']:.1f}, asyncio websockets + ocpp "
            f"ChargePoint {us['baseline']:.1f}; fleetsim / bare "
            f"{verdicts['fleetsim_over_bare_cpu_per_round_trip']:.2f}x, baseline / fleetsim "
            f"{verdicts['baseline_over_fleetsim_cpu_per_round_trip']:.2f}x"
        )
        over = verdicts["cpu_per_round_trip_over_bare_reference"]
        print(
            f"  the same over the reference ({bare_us:.1f} µs): bare {over['bare']:.2f}x, "
            f"fleetsim {over['fleetsim']:.2f}x, fleetsim with the default collector "
            f"{over['fleetsim-default-gc']:.2f}x, baseline {over['baseline']:.2f}x"
        )
    if "idle_cpu_percent_per_1000_stations" in verdicts:
        print(
            f"idle: {verdicts['idle_cpu_percent_per_1000_stations']:.2f} % of a core per 1,000 "
            "booted stations between heartbeats (≙ "
            f"{verdicts['idle_cpu_bare_round_trips_per_s_per_1000_stations']:,.1f} bare round "
            "trips/s)"
        )


def _busy(plan: Plan, client_root: Path) -> dict[str, Any]:
    """The busy case, once (a run takes minutes, and it measures how the fleet holds up)."""
    workload = plan.busy
    print(
        f"busy: {workload.stations:,} stations beside a process that keeps a core busy "
        f"(client {client_root})",
        flush=True,
    )
    started_s = time.monotonic()
    result = _fleet_run(workload, plan, client_root.resolve())
    print(f"  busy: took {time.monotonic() - started_s:.0f} s", flush=True)
    for line in _busy_table(result):
        print("  " + line)
    return {"workload": workload.__dict__, "client_root": str(client_root.resolve()), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small and short, one run")
    parser.add_argument("--runs", type=int, help="runs per workload (medians are reported)")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(DEFAULT_WORKLOADS),
        help=f"comma-separated workloads to run, of: {','.join(WORKLOADS)} (busy only when named)",
    )
    parser.add_argument(
        "--busy-stations",
        type=int,
        help="another size for the busy case (still two workers and two source addresses)",
    )
    parser.add_argument(
        "--client-root",
        type=Path,
        default=ROOT,
        help="checkout whose fleetsim runs the busy case (a worktree of another commit, to "
        "compare before and after a change)",
    )
    parser.add_argument(
        "--largest-stations",
        type=int,
        help="try another size for the largest fleet (workers, source addresses and target "
        "processes grow with it: one each per 15,000 stations, at least two)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(WORKLOADS))
    if unknown:
        parser.error(f"--only: unknown workload {', '.join(unknown)}; choose from {WORKLOADS}")
    plan = SMOKE if args.smoke else FULL
    if args.runs is not None:
        plan = Plan(**{**plan.__dict__, "runs": args.runs})
    if args.busy_stations is not None:
        plan = Plan(**{**plan.__dict__, "busy": replace(plan.busy, stations=args.busy_stations)})
    if args.largest_stations is not None:
        plan = Plan(**{**plan.__dict__, "largest": _largest(args.largest_stations)})

    report: dict[str, Any] = {
        "machine_cpus": os.cpu_count(),
        "runs": plan.runs,
        "smoke": args.smoke,
    }
    if args.only == ["busy"]:
        # Robustness, not CPU figures: no bare reference to set them against.
        report["busy"] = _busy(plan, args.client_root)
        path = args.json if args.json != RESULTS else RESULTS.with_name("scale-busy.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {path}")
        return
    print(
        f"bare reference: a bare trio-websocket client, {plan.roundtrip_stations:,} stations "
        "back to back",
        flush=True,
    )
    report["bare_reference"] = _bare_reference(plan)
    bare_us = report["bare_reference"]["cpu_us_per_round_trip"]
    print(f"  {bare_us:.1f} µs of CPU per round trip: every CPU figure below is set against it")
    fleet_rows = []
    failed: dict[str, str] = {}
    for workload in (plan.nominal, plan.reference, plan.largest, plan.half_load):
        key = workload.name.replace(" ", "_")
        if key not in args.only:
            continue
        print(f"{workload.name}: {workload.stations:,} stations", flush=True)
        try:
            measured = _repeat(plan, lambda w=workload: _fleet_run(w, plan), workload.name)
        except RuntimeError as failure:
            # A fleet that did not come up is a result, not the end of the benchmark: the
            # workloads before and after it keep their figures, and the run exits 1.
            print(f"  {workload.name} failed: {failure}", flush=True)
            failed[key] = str(failure)
            continue
        _relate_fleet_figures(measured["median"], bare_us)
        report[key] = {"workload": workload.__dict__, **measured}
        fleet_rows.append((workload.name, measured["median"]))
    if "busy" in args.only:
        report["busy"] = _busy(plan, args.client_root)
    if "back_to_back" in args.only:
        print("back to back: bench/roundtrip.py", flush=True)
        report["back_to_back"] = _roundtrip(plan, "bare,fleetsim-default-gc,fleetsim,baseline")
    if "idle" in args.only:
        print("idle: bench/roundtrip.py", flush=True)
        report["idle"] = _roundtrip(plan, "idle")
    report["verdicts"] = _verdicts(report, plan)
    report["failed_workloads"] = failed

    print()
    print(f"bare reference: {bare_us:.1f} µs of CPU per round trip on this machine, this run")
    if fleet_rows:
        for line in _fleet_table(fleet_rows):
            print(line)
        print()
    _print_verdicts(report["verdicts"], plan)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")
    for name, failure in failed.items():
        print(f"FAILED {name}: {failure}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
