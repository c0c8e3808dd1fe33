"""Round-trip cost of fleetsim's stack next to a bare trio-websocket client and a plain fleet.

For each station count N, client processes run one after another against a target in a
separate process (so the target's CPU is not counted):

  bare      N trio-websocket connections, each sending a fixed Heartbeat CALL and waiting for
            any answer, back to back: the floor that any Python trio client pays.
  fleetsim  N fleetsim links (open_station_link: frames, ids, correlation, schema validation of
            what comes in and what goes out, metrics), each calling Heartbeat back to back,
            with the collector tuned after start-up as a run tunes it (simulator/gc_tuning.py);
            `fleetsim-default-gc` is the same with CPython's default collector.
  baseline  N stations written the way a user would without fleetsim: asyncio `websockets` and
            the `ocpp` package's ChargePoint, each calling Heartbeat back to back
            (bench/baseline.py).
  idle      N complete fleetsim stations booted and idle, for the memory each one costs.

`--modes` picks which of them run (all by default).  The target (`--target`) is either

  cheap     bench/target.py: a picows + uvloop responder that answers each CALL without
            parsing it, for about 10 µs of CPU per round trip (`--target-processes K` runs K
            processes on one port), so the clients, not the target, set the pace; or
  embedded  fleetsim's own CSMS (`python -m fleetsim.cli csms`), which parses and validates
            every frame in one trio process and saturates first.

Each client measures its own CPU time (getrusage) and round trips over a fixed window after a
warm-up, so the figures are CPU microseconds per round trip, independent of how busy the
machine is otherwise.  The client prints a mark when its window opens and closes, and the
driver reads the target processes' CPU time from /proc at both marks: the target's own CPU per
round trip over the same window, printed and recorded, shows what the target costs next to the
client.  With --runs R every case runs R times, the modes taking turns within each round so
that a change in the machine's load hits all of them alike, and the medians are printed with
the ratios fleetsim/bare (CPU per round trip; the aim is at most 1.3x) and baseline/fleetsim
(the aim is at least 2x), each also given per round.

    python bench/roundtrip.py --stations 100 --stations 1000 --runs 3
    python bench/roundtrip.py --stations 100 --runs 1 --modes bare,fleetsim --window 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import procstat
from target import STOP_TIMEOUT_S, Target, read_line, run_target

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_FRAME = '[2,"1","Heartbeat",{}]'
#: Every client mode, in the order a full run takes them.
MODES = ("bare", "fleetsim-default-gc", "fleetsim", "baseline", "idle")
#: A line a client prints when its measurement window opens or closes.
MARK_PREFIX = "roundtrip-mark "
CLIENT_TIMEOUT_S = 600
TARGET_STARTUP_TIMEOUT_S = 60.0
HEARTBEAT_INTERVAL_S = 300


def _mark(event: str) -> None:
    """Tell the driver the window opened or closed, so it reads the target's CPU then."""
    print(MARK_PREFIX + event, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the clients, each run in its own process ------------------------------------------------


async def _measure(loops: list[Any], warmup_s: float, window_s: float) -> dict[str, Any]:
    """Run `loops` (each an async fn taking a counter list) and measure the window."""
    import trio

    counts = [0]
    latencies: list[float] = []

    async with trio.open_nursery() as nursery:
        for loop in loops:
            nursery.start_soon(loop, counts, latencies)
        await trio.sleep(warmup_s)
        latencies.clear()
        start_count, start_wall = counts[0], time.perf_counter()
        start_cpu = procstat.own_cpu_s()
        _mark("window_start")
        await trio.sleep(window_s)
        round_trips = counts[0] - start_count
        cpu_s = procstat.own_cpu_s() - start_cpu
        wall_s = time.perf_counter() - start_wall
        _mark("window_end")
        nursery.cancel_scope.cancel()
    latencies.sort()
    return procstat.round_trip_figures(round_trips, cpu_s, wall_s, latencies)


async def _client_bare(url: str, stations: int, warmup_s: float, window_s: float) -> dict[str, Any]:
    import gc

    import trio
    from trio_websocket import open_websocket_url

    gc.collect()
    rss_before_kb = procstat.rss_kb()

    async def one(index: int, ready: Any, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with open_websocket_url(
            f"{url}/BARE{index:05d}", subprotocols=["ocpp2.1"]
        ) as connection:
            # The CSMS wants a BootNotification before anything else makes sense to it.
            await connection.send_message(
                '[2,"0","BootNotification",{"reason":"PowerUp","chargingStation":'
                '{"model":"bench","vendorName":"bench"}}]'
            )
            await connection.get_message()
            task_status.started(connection)
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        connections = [await nursery.start(one, index, None) for index in range(stations)]
        await trio.sleep(warmup_s)
        gc.collect()
        rss_kb_per_connection = (procstat.rss_kb() - rss_before_kb) / stations

        def loop_for(connection: Any) -> Any:
            async def loop(counts: list[int], latencies: list[float]) -> None:
                while True:
                    sent_at = time.perf_counter()
                    await connection.send_message(HEARTBEAT_FRAME)
                    await connection.get_message()
                    latencies.append(time.perf_counter() - sent_at)
                    counts[0] += 1

            return loop

        result = await _measure([loop_for(c) for c in connections], warmup_s, window_s)
        nursery.cancel_scope.cancel()
    result["rss_kb_per_station"] = rss_kb_per_connection
    return result


async def _client_fleetsim(
    url: str, stations: int, warmup_s: float, window_s: float, *, tuned_gc: bool = True
) -> dict[str, Any]:
    import trio

    from fleetsim.simulator.link import Answer
    from fleetsim.simulator.stats import RunStats
    from fleetsim.simulator.transport import CallDeadlines, ConnectionSettings, open_station_link

    stats = RunStats()
    settings = ConnectionSettings(csms_url=url)
    deadlines = CallDeadlines()

    def refuse(action: str, payload: Any) -> Answer:
        raise NotImplementedError

    async def one(index: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with (
            trio.open_nursery() as follow_ups,
            open_station_link(
                f"FS{index:05d}",
                settings,
                refuse,
                spawn=follow_ups.start_soon,
                observer=stats,
                deadlines=deadlines,
            ) as link,
        ):
            await link.call(
                "BootNotification",
                {
                    "reason": "PowerUp",
                    "chargingStation": {"model": "bench", "vendorName": "bench"},
                },
            )
            task_status.started(link)
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(deadlines.run)
        links = [await nursery.start(one, index) for index in range(stations)]
        if tuned_gc:
            from fleetsim.simulator.gc_tuning import tune_collector

            tune_collector()

        def loop_for(link: Any) -> Any:
            async def loop(counts: list[int], latencies: list[float]) -> None:
                while True:
                    sent_at = time.perf_counter()
                    await link.call("Heartbeat", {})
                    latencies.append(time.perf_counter() - sent_at)
                    counts[0] += 1

            return loop

        result = await _measure([loop_for(link) for link in links], warmup_s, window_s)
        nursery.cancel_scope.cancel()
    return result


async def _client_idle(url: str, stations: int, warmup_s: float, window_s: float) -> dict[str, Any]:
    """RSS and CPU of N booted, idle stations (no EVs, heartbeat every 300 s)."""
    import gc

    import trio

    from fleetsim.simulator.clock import SimClock
    from fleetsim.simulator.station import Station, StationConfig
    from fleetsim.simulator.stats import RunStats
    from fleetsim.simulator.transport import ConnectionSettings, open_station_link

    gc.collect()
    rss_before_kb = procstat.rss_kb()
    clock = SimClock(dt.datetime.now(dt.UTC))
    clock.start()
    stats = RunStats()
    config = StationConfig()
    settings = ConnectionSettings(csms_url=url)

    def connect(station: Station) -> Any:
        return open_station_link(
            station.id, settings, station.handle, spawn=station.spawn, observer=stats
        )

    async with trio.open_nursery() as nursery:
        stations_list = [Station(f"IDLE{i:05d}", i, config, clock, stats) for i in range(stations)]
        for station in stations_list:
            await nursery.start(station.run, connect)
        for station in stations_list:
            await station.wait_synced()
        await trio.sleep(warmup_s)
        gc.collect()
        rss_after_kb = procstat.rss_kb()
        cpu_start = procstat.own_cpu_s()
        await trio.sleep(window_s)
        idle_cpu_percent = (procstat.own_cpu_s() - cpu_start) / window_s * 100
        nursery.cancel_scope.cancel()
    return {
        "rss_kb_per_station": (rss_after_kb - rss_before_kb) / stations,
        "idle_cpu_percent": idle_cpu_percent,
    }


async def _client_fleetsim_default_gc(
    url: str, stations: int, warmup_s: float, window_s: float
) -> dict[str, Any]:
    return await _client_fleetsim(url, stations, warmup_s, window_s, tuned_gc=False)


CLIENTS = {
    "bare": _client_bare,
    "fleetsim": _client_fleetsim,
    "fleetsim-default-gc": _client_fleetsim_default_gc,
    "idle": _client_idle,
}


def _client_main(mode: str, url: str, stations: int, warmup_s: float, window_s: float) -> None:
    if mode == "baseline":
        # asyncio and the ocpp package, in a process of their own like every client.
        import baseline

        result = baseline.run_client(url, stations, warmup_s, window_s, mark=_mark)
    else:
        import trio

        result = trio.run(CLIENTS[mode], url, stations, warmup_s, window_s)
    print(json.dumps(result))


# -- the driver ------------------------------------------------------------------------------


@contextlib.contextmanager
def _embedded_target() -> Iterator[Target]:
    """fleetsim's embedded CSMS in its own process, as the target."""
    port = _free_port()
    with tempfile.TemporaryFile() as errors:
        csms = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetsim.cli",
                "csms",
                "--port",
                str(port),
                "--heartbeat-interval",
                str(HEARTBEAT_INTERVAL_S),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # Its warnings (a client closing its connections at the end of a run) would fill
            # an unread pipe; they are kept in a file and shown only if the CSMS fails.
            stderr=errors,
        )
        try:
            try:
                read_line(csms, TARGET_STARTUP_TIMEOUT_S)  # "embedded CSMS on ...": listening
            except (TimeoutError, RuntimeError) as exc:
                errors.seek(0)
                raise RuntimeError(f"{exc}\n{errors.read().decode(errors='replace')}") from exc
            # Whatever else it prints goes nowhere, so a full pipe never blocks it.
            assert csms.stdout is not None
            threading.Thread(target=csms.stdout.read, daemon=True).start()
            yield Target(url=f"ws://127.0.0.1:{port}/ocpp", processes=[csms])
        finally:
            csms.terminate()
            try:
                csms.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                csms.kill()
                csms.wait()


def _run_client(
    mode: str, url: str, stations: int, warmup_s: float, window_s: float, target: Target
) -> dict[str, Any]:
    """Run one client process and return its result, with the target's CPU over its window.

    The client's stdout is read as it comes: at each window mark the target's CPU is read from
    /proc, and the last line is the result.  The process is killed after CLIENT_TIMEOUT_S.
    """
    command = [
        sys.executable,
        __file__,
        "--client",
        mode,
        "--url",
        url,
        "--stations",
        str(stations),
        "--warmup",
        str(warmup_s),
        "--window",
        str(window_s),
    ]
    target_cpu_s: dict[str, float] = {}
    lines: list[str] = []
    with tempfile.TemporaryFile() as errors:
        client = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            client.kill()

        timer = threading.Timer(CLIENT_TIMEOUT_S, kill)
        timer.start()
        try:
            assert client.stdout is not None
            for raw in client.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith(MARK_PREFIX):
                    target_cpu_s[line.removeprefix(MARK_PREFIX)] = target.cpu_s()
                elif line:
                    lines.append(line)
            status = client.wait()
        finally:
            timer.cancel()
            if client.poll() is None:
                client.kill()
                client.wait()
        if status != 0 or not lines:
            errors.seek(0)
            why = f"killed after {CLIENT_TIMEOUT_S} s" if timed_out.is_set() else f"status {status}"
            raise RuntimeError(
                f"client {mode} ({stations} stations) failed ({why}):\n"
                + errors.read().decode(errors="replace")[-4000:]
            )
    result = dict(json.loads(lines[-1]))
    if {"window_start", "window_end"} <= target_cpu_s.keys() and result.get("round_trips"):
        spent_s = target_cpu_s["window_end"] - target_cpu_s["window_start"]
        result["target_cpu_us_per_round_trip"] = spent_s / result["round_trips"] * 1e6
        result["target_cpu_percent"] = spent_s / window_s * 100
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def _ratio(
    case: dict[str, Any], numerator: str, denominator: str
) -> tuple[float, list[float]] | None:
    """CPU per round trip of `numerator` over `denominator`: of the medians, and per round
    (the two clients of a round ran minutes apart at most, under the same load)."""
    if numerator not in case or denominator not in case:
        return None
    key = "cpu_us_per_round_trip"
    of_medians = case[numerator]["median"][key] / case[denominator]["median"][key]
    per_round = [
        top[key] / bottom[key]
        for top, bottom in zip(case[numerator]["runs"], case[denominator]["runs"], strict=True)
    ]
    return of_medians, per_round


def _print_ratio(stations: int, label: str, ratio: tuple[float, list[float]] | None) -> None:
    if ratio is None:
        return
    of_medians, per_round = ratio
    rounds = ", ".join(f"{value:.2f}" for value in per_round)
    print(f"{stations:>8} CPU per round trip, {label}: {of_medians:.2f}x (rounds: {rounds})")


def _parse_modes(values: list[str] | None) -> list[str]:
    if not values:
        return list(MODES)
    modes: list[str] = []
    for value in values:
        for mode in value.split(","):
            mode = mode.strip()
            if mode not in MODES:
                raise SystemExit(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
            if mode not in modes:
                modes.append(mode)
    return modes


def _print_row(stations: int, mode: str, medians: dict[str, Any]) -> None:
    target_us = medians.get("target_cpu_us_per_round_trip")
    target_column = "" if target_us is None else f"{target_us:.1f}"
    if mode == "idle":
        print(
            f"{stations:>8} {mode:>19} {'':>8} {'':>10} {'':>7} {'':>7} "
            f"{medians['rss_kb_per_station']:>10.1f} "
            f"{medians['idle_cpu_percent']:>9.2f}"
        )
    else:
        rss = medians.get("rss_kb_per_station")
        print(
            f"{stations:>8} {mode:>19} {medians['round_trips_per_s']:>8.0f} "
            f"{medians['cpu_us_per_round_trip']:>10.1f} "
            f"{medians['p50_ms']:>7.2f} {medians['p99_ms']:>7.2f} "
            f"{'' if rss is None else f'{rss:.1f}':>10} {'':>9} {target_column:>12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, action="append")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument(
        "--modes",
        action="append",
        help=f"clients to run, comma-separated (default: {','.join(MODES)})",
    )
    parser.add_argument("--target", choices=("cheap", "embedded"), default="cheap")
    parser.add_argument(
        "--target-processes", type=int, default=1, help="processes of the cheap target"
    )
    parser.add_argument("--client", choices=sorted([*CLIENTS, "baseline"]))
    parser.add_argument("--url")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "roundtrip.json")
    args = parser.parse_args()
    counts = args.stations or [100, 1000]
    if args.client:
        _client_main(args.client, args.url, counts[0], args.warmup, args.window)
        return
    modes = _parse_modes(args.modes)

    target_cm = (
        run_target(args.target_processes, HEARTBEAT_INTERVAL_S)
        if args.target == "cheap"
        else _embedded_target()
    )
    report: dict[str, Any] = {
        "machine_cpus": os.cpu_count(),
        "runs": args.runs,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "modes": modes,
        "target": {
            "kind": args.target,
            "processes": args.target_processes if args.target == "cheap" else 1,
        },
        "cases": [],
    }
    with target_cm as target:
        url = target.url
        print(
            f"target: {args.target} ({url}, "
            f"{len(target.processes)} process{'es' if len(target.processes) > 1 else ''})"
        )
        print(
            f"{'stations':>8} {'client':>19} {'rt/s':>8} {'cpu µs/rt':>10} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'KB/station':>10} {'idle cpu%':>9} {'target µs/rt':>12}"
        )
        for stations in counts:
            case: dict[str, Any] = {"stations": stations}
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
            for _ in range(args.runs):
                for mode in modes:
                    runs[mode].append(
                        _run_client(mode, url, stations, args.warmup, args.window, target)
                    )
            for mode in modes:
                keys = {key for run in runs[mode] for key in run}
                medians = {key: _median(runs[mode], key) for key in sorted(keys)}
                case[mode] = {"median": medians, "runs": runs[mode]}
                _print_row(stations, mode, medians)
            bare_ratio = _ratio(case, "fleetsim", "bare")
            if bare_ratio is not None:
                case["cpu_ratio_fleetsim_to_bare"] = bare_ratio[0]
                case["cpu_ratio_fleetsim_to_bare_per_round"] = bare_ratio[1]
            _print_ratio(stations, "fleetsim / bare", bare_ratio)
            baseline_ratio = _ratio(case, "baseline", "fleetsim")
            if baseline_ratio is not None:
                case["cpu_ratio_baseline_to_fleetsim"] = baseline_ratio[0]
                case["cpu_ratio_baseline_to_fleetsim_per_round"] = baseline_ratio[1]
            _print_ratio(stations, "baseline / fleetsim", baseline_ratio)
            _print_ratio(
                stations,
                "fleetsim with the default collector / tuned",
                _ratio(case, "fleetsim-default-gc", "fleetsim"),
            )
            target_costs = [
                run["target_cpu_us_per_round_trip"]
                for mode in modes
                for run in runs[mode]
                if run.get("target_cpu_us_per_round_trip") is not None
            ]
            if target_costs:
                target_us = statistics.median(target_costs)
                case["target_cpu_us_per_round_trip"] = target_us
                print(
                    f"{stations:>8} the target's own CPU per round trip: {target_us:.1f} µs "
                    f"(median over every client's window; range "
                    f"{min(target_costs):.1f}-{max(target_costs):.1f})"
                )
            report["cases"].append(case)
    report["target"]["url"] = url
    # The cheap target's own account of the whole session, handshakes and pauses included.
    report["target"]["process_summaries"] = target.summaries
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
