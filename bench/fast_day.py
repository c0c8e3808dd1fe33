"""A simulated day of a large depot in `--fast` mode: how much faster than real time it runs.

Runs `fleetsim run scenarios/depot-24h.yaml --fast --stations N` (two EVSEs per station,
realistic depot arrivals, meter values every 5 minutes, heartbeats every 15 minutes, the
embedded CSMS answering over in-memory links) R times, and prints the wall and CPU seconds of
each run, the medians, and simulated seconds per wall second.  CPU seconds (user and system,
of the run's process) are what to compare on a shared machine, where wall time depends on
what else runs.

    python bench/fast_day.py --stations 1000 --runs 3
    python bench/fast_day.py --stations 1000 --runs 3 --scenario scenarios/depot-24h-priced.yaml

The second is the same day with a default tariff and a daily TxDefaultProfile on every station
(running costs in every transaction event, power changed at every profile period): what the
CSMS's tariffs and profiles cost the simulation.  `--client-root DIR` runs the fleetsim of
another checkout (an earlier commit, say) with this one's scenario, for before-and-after
figures measured side by side.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

import checkout

ROOT = Path(__file__).resolve().parent.parent


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(stations: int, scenario: str, root: Path = ROOT) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        summary_path = Path(scratch) / "summary.json"
        cpu_before_s = _children_cpu_s()
        subprocess.run(
            [
                *checkout.command(root),
                "run",
                str((ROOT / scenario).resolve()),
                "--fast",
                "--no-progress",
                "--stations",
                str(stations),
                "--summary-json",
                str(summary_path),
            ],
            cwd=root,
            env=checkout.environment(root),
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        cpu_s = _children_cpu_s() - cpu_before_s
        summary = json.loads(summary_path.read_text())
    return {
        "wall_seconds": summary["wall_seconds"],
        "cpu_seconds": cpu_s,
        "simulated_seconds": summary["simulated_seconds"],
        "messages": summary["messages_sent"] + summary["messages_received"],
        "ev_sessions": summary["ev_sessions"],
        "energy_kwh": summary["energy_delivered_wh"] / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="scenarios/depot-24h.yaml")
    parser.add_argument(
        "--client-root",
        type=Path,
        default=ROOT,
        help="the checkout whose fleetsim runs the day (default: this one)",
    )
    args = parser.parse_args()
    runs = []
    for number in range(1, args.runs + 1):
        result = run_once(args.stations, args.scenario, args.client_root)
        runs.append(result)
        print(
            f"run {number}: {result['cpu_seconds']:.1f} s CPU, {result['wall_seconds']:.1f} s "
            "wall for "
            f"{result['simulated_seconds'] / 3600:.1f} simulated hours, "
            f"{result['messages']:,} messages, {result['ev_sessions']:,} EV sessions, "
            f"{result['energy_kwh']:,.0f} kWh"
        )
    wall = statistics.median(run["wall_seconds"] for run in runs)
    simulated = statistics.median(run["simulated_seconds"] for run in runs)
    messages = statistics.median(run["messages"] for run in runs)
    cpu = statistics.median(run["cpu_seconds"] for run in runs)
    print(
        f"median of {args.runs}: {cpu:.1f} s CPU, {wall:.1f} s wall, "
        f"{simulated / wall:,.0f} simulated seconds "
        f"per wall second, {messages / wall:,.0f} messages per wall second "
        f"({args.stations} stations, 2 EVSEs each)"
    )


if __name__ == "__main__":
    main()
