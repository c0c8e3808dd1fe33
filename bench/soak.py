"""Soak: a fleet that runs for half an hour with connections dropped every few minutes, watched
for leaks.

A load test that runs for hours must not grow: every dropped and reopened connection, every
CALL, every EV visit has to give back what it took.  This runs `fleetsim run
scenarios/reference-load.yaml --stations N` in a process of its own against a target in another
(`bench/target.py`'s responder when it is there, else the embedded CSMS, as `busy_fleet.py`
does), with `--drop SHARE@+T` every `--drop-every` minutes (a share of the connections closed as
a network failure closes them: the stations reconnect after their RetryBackOff wait), and
prints, every wall minute:

  minute      wall minutes since the client started
  RSS MB      the client's resident memory (its whole process tree, from /proc)
  tasks       its trio tasks (`fleetsim_trio_tasks`, scraped from its Prometheus endpoint)
  files       its open file descriptors (a socket per connected station)
  reopened    connections the stations opened in that minute, all of them again after a drop
              (`fleetsim_connection_attempts_total{outcome="ok"}`)
  drops       connections the fault closed in that minute (`fleetsim_faults_injected_total`)
  CALLs/s     frames the stations sent per second over the minute (their CALLs: the target
              initiates nothing)
  accepted    stations booted and connected at the sample

At the end it says whether RSS and the task count are flat: every sample from the warm-up
minute (`--warmup`, 5) to the end within 5 % of the warm-up minute's value.  The per-minute rows
and the verdict go to `bench/results/soak.json`.

    python bench/soak.py                      # 2,000 stations, 30 minutes
    python bench/soak.py --smoke              # 200 stations, 2 minutes (tests/test_bench_smoke.py)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import procstat
from busy_fleet import (
    _METRICS_LINE,
    SCENARIO,
    _client,
    _scrape,
    _start_target,
    _total,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
#: How far from the warm-up value RSS and the task count may go and still count as flat.
FLAT_WITHIN = 0.05


@dataclass
class Minute:
    """One row of the table: the client at the end of one wall minute."""

    minute: int
    rss_mb: float
    trio_tasks: float
    open_files: int
    reopened: float
    drops: float
    calls_per_s: float
    accepted: float


@dataclass
class _Counters:
    wall_s: float
    connections_opened: float
    drops: float
    frames_sent: float


def _counters(samples: dict[Any, float]) -> _Counters:
    return _Counters(
        time.monotonic(),
        _total(samples, "fleetsim_connection_attempts_total", outcome="ok"),
        _total(samples, "fleetsim_faults_injected_total", kind="drop"),
        _total(samples, "fleetsim_websocket_messages_total", direction="sent"),
    )


def _open_files(pid: int) -> int:
    """File descriptors the client holds (its sockets): a connection that is dropped and not
    closed would show here."""
    return sum(len(os.listdir(f"/proc/{member}/fd")) for member in procstat.tree(pid))


def drop_flags(minutes: float, every_min: float, share: float) -> list[str]:
    """`--drop SHARE@+Ts` for every `every_min` minutes of the run (simulated time runs at wall
    speed in the reference workload); each drop hits its own share of the fleet, drawn from the
    seed and the drop's place in the list."""
    flags = []
    at_s = every_min * 60
    while at_s < minutes * 60:
        flags += ["--drop", f"{share:g}@+{at_s:.0f}s"]
        at_s += every_min * 60
    return flags


def flatness(values: list[float]) -> dict[str, Any]:
    """How far every value strays from the first (the warm-up minute's), in %; flat within
    `FLAT_WITHIN`."""
    reference = values[0]
    worst = max(abs(value - reference) / reference for value in values) if reference else 0.0
    return {
        "warmup_value": reference,
        "end_value": values[-1],
        "min": min(values),
        "max": max(values),
        "end_change_percent": (values[-1] - reference) / reference * 100 if reference else 0.0,
        "worst_change_percent": worst * 100,
        "flat": worst <= FLAT_WITHIN,
    }


_COLUMNS = (
    ("minute", "minute", "{:.0f}"),
    ("rss_mb", "RSS MB", "{:.1f}"),
    ("trio_tasks", "tasks", "{:.0f}"),
    ("open_files", "files", "{:.0f}"),
    ("reopened", "reopened", "{:.0f}"),
    ("drops", "drops", "{:.0f}"),
    ("calls_per_s", "CALLs/s", "{:.1f}"),
    ("accepted", "accepted", "{:.0f}"),
)


def _row(values: dict[str, Any]) -> str:
    return " ".join(
        f"{form.format(values[key]):>{max(len(title), 8)}}" for key, title, form in _COLUMNS
    )


def soak(
    *,
    stations: int,
    minutes: int,
    warmup_min: int,
    drop_every_min: float,
    drop_share: float,
    target_kind: str,
    ramp_timeout_s: float,
) -> dict[str, Any]:
    """Run the soak and return its report (see the module docstring)."""
    if not 1 <= warmup_min < minutes:
        raise SystemExit(f"--warmup must be a minute between 1 and {minutes - 1}")
    drops = drop_flags(minutes, drop_every_min, drop_share)
    target_name, target = _start_target(target_kind)
    rows: list[Minute] = []
    try:
        launched_s = time.monotonic()
        client_args = drops
        with _client(target.url, stations, SCENARIO, None, ROOT, client_args) as (process, reader):
            metrics_url = reader.wait_for(_METRICS_LINE, 120.0).group(1)
            while True:
                if process.poll() is not None:
                    raise RuntimeError("the client ended early:\n" + "\n".join(reader.lines[-20:]))
                samples = _scrape(metrics_url)
                if _total(samples, "fleetsim_stations", state="accepted") >= stations:
                    break
                if time.monotonic() - launched_s > ramp_timeout_s:
                    raise RuntimeError(f"the fleet did not boot within {ramp_timeout_s:g} s")
                time.sleep(0.25)
            ramp_up_s = time.monotonic() - launched_s
            print(f"{stations} stations booted in {ramp_up_s:.1f} s; target: {target_name}")
            print(" ".join(f"{title:>{max(len(title), 8)}}" for _, title, _ in _COLUMNS))
            before = _counters(samples)
            for minute in range(1, minutes + 1):
                time.sleep(max(0.0, launched_s + minute * 60 - time.monotonic()))
                if process.poll() is not None:
                    raise RuntimeError("the client ended early:\n" + "\n".join(reader.lines[-20:]))
                samples = _scrape(metrics_url)
                after = _counters(samples)
                row = Minute(
                    minute=minute,
                    rss_mb=procstat.tree_memory_kb(process.pid)["VmRSS"] / 1024,
                    trio_tasks=_total(samples, "fleetsim_trio_tasks"),
                    open_files=_open_files(process.pid),
                    reopened=after.connections_opened - before.connections_opened,
                    drops=after.drops - before.drops,
                    calls_per_s=(after.frames_sent - before.frames_sent)
                    / max(after.wall_s - before.wall_s, 1e-9),
                    accepted=_total(samples, "fleetsim_stations", state="accepted"),
                )
                before = after
                rows.append(row)
                print(_row(asdict(row)), flush=True)
    finally:
        target.stop()
    settled = rows[warmup_min - 1 :]
    rss = flatness([row.rss_mb for row in settled])
    tasks = flatness([row.trio_tasks for row in settled])
    files = flatness([float(row.open_files) for row in settled])
    return {
        "stations": stations,
        "minutes": minutes,
        "warmup_minute": warmup_min,
        "drops": {"every_min": drop_every_min, "share": drop_share, "flags": drops},
        "target": target_name,
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "machine_cpus": os.cpu_count(),
        "ramp_up_s": ramp_up_s,
        "rows": [asdict(row) for row in rows],
        "rss_mb": rss,
        "trio_tasks": tasks,
        "open_files": files,
        "connections_reopened": sum(row.reopened for row in rows),
        "drops_injected": sum(row.drops for row in rows),
        "flat": rss["flat"] and tasks["flat"],
    }


def _verdict_line(name: str, figures: dict[str, Any], warmup_min: int) -> str:
    return (
        f"{name}: {figures['warmup_value']:.1f} at minute {warmup_min}, "
        f"{figures['end_value']:.1f} at the end ({figures['end_change_percent']:+.1f} %), "
        f"{figures['min']:.1f} to {figures['max']:.1f} in between: "
        + ("flat" if figures["flat"] else f"NOT flat (within {FLAT_WITHIN:.0%} of minute ")
        + ("" if figures["flat"] else f"{warmup_min} asked)")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=2_000)
    parser.add_argument("--minutes", type=int, default=30, help="wall minutes measured")
    parser.add_argument("--warmup", type=int, default=5, help="the minute flatness counts from")
    parser.add_argument(
        "--drop-every", type=float, default=3.0, help="minutes between drops (default 3)"
    )
    parser.add_argument(
        "--drop-share", type=float, default=0.1, help="share of connections each drop closes"
    )
    parser.add_argument("--target", choices=("auto", "embedded", "target"), default="auto")
    parser.add_argument("--ramp-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="200 stations for 2 minutes, warm-up minute 1, a drop every 30 s: that it runs",
    )
    args = parser.parse_args()
    if args.smoke:
        args.stations, args.minutes, args.warmup, args.drop_every = 200, 2, 1, 0.5
    report = soak(
        stations=args.stations,
        minutes=args.minutes,
        warmup_min=args.warmup,
        drop_every_min=args.drop_every,
        drop_share=args.drop_share,
        target_kind=args.target,
        ramp_timeout_s=args.ramp_timeout,
    )
    report["smoke"] = args.smoke
    print(_verdict_line("RSS MB", report["rss_mb"], args.warmup))
    print(_verdict_line("trio tasks", report["trio_tasks"], args.warmup))
    print(_verdict_line("open files", report["open_files"], args.warmup))
    print(
        f"{report['drops_injected']:.0f} connections dropped, "
        f"{report['connections_reopened']:.0f} reopened; "
        + ("flat" if report["flat"] else "NOT flat")
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
