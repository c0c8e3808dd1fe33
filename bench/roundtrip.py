"""Round-trip cost of fleetsim's stack against a bare trio-websocket client, side by side.

For each station count N, three client processes run one after another against the embedded
CSMS in a separate process (so the target's CPU is not counted):

  bare      N trio-websocket connections, each sending a fixed Heartbeat CALL and waiting for
            any answer, back to back: the floor that any Python trio client pays.
  fleetsim  N fleetsim links (open_station_link: frames, ids, correlation, schema validation of
            what comes in and what goes out, metrics), each calling Heartbeat back to back,
            with the collector tuned after start-up as a run tunes it (simulator/gc_tuning.py);
            `fleetsim-default-gc` is the same with CPython's default collector.
  idle      N complete fleetsim stations booted and idle, for the memory each one costs.

Each client measures its own CPU time (getrusage) and round trips over a fixed window after a
warm-up, so the figures are CPU microseconds per round trip, independent of how busy the
machine is otherwise.  With --runs R every case runs R times and the medians are printed, with
the ratio fleetsim/bare.

    python bench/roundtrip.py --stations 100 --stations 1000 --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_FRAME = '[2,"1","Heartbeat",{}]'


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
        start_count, start_cpu, start_wall = counts[0], _cpu_s(), time.perf_counter()
        await trio.sleep(window_s)
        round_trips = counts[0] - start_count
        cpu_s = _cpu_s() - start_cpu
        wall_s = time.perf_counter() - start_wall
        nursery.cancel_scope.cancel()
    latencies.sort()
    return {
        "round_trips": round_trips,
        "round_trips_per_s": round_trips / wall_s,
        "cpu_us_per_round_trip": cpu_s / max(round_trips, 1) * 1e6,
        "cpu_percent": cpu_s / wall_s * 100,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


async def _client_bare(url: str, stations: int, warmup_s: float, window_s: float) -> dict[str, Any]:
    import gc

    import trio
    from trio_websocket import open_websocket_url

    gc.collect()
    rss_before_kb = _rss_kb()

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
        rss_kb_per_connection = (_rss_kb() - rss_before_kb) / stations

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

    from simulator.link import Answer, CallDeadlines
    from simulator.stats import RunStats
    from simulator.transport import ConnectionSettings, open_station_link

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
            from simulator.gc_tuning import tune_collector

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

    from simulator.clock import SimClock
    from simulator.station import Station, StationConfig
    from simulator.stats import RunStats
    from simulator.transport import ConnectionSettings, open_station_link

    gc.collect()
    rss_before_kb = _rss_kb()
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
        rss_after_kb = _rss_kb()
        cpu_start = _cpu_s()
        await trio.sleep(window_s)
        idle_cpu_percent = (_cpu_s() - cpu_start) / window_s * 100
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
    import trio

    result = trio.run(CLIENTS[mode], url, stations, warmup_s, window_s)
    print(json.dumps(result))


# -- the driver ------------------------------------------------------------------------------


def _run_client(
    mode: str, url: str, stations: int, warmup_s: float, window_s: float
) -> dict[str, Any]:
    output = subprocess.run(
        [
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
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, action="append")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--client", choices=sorted(CLIENTS))
    parser.add_argument("--url")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "roundtrip.json")
    args = parser.parse_args()
    counts = args.stations or [100, 1000]
    if args.client:
        _client_main(args.client, args.url, counts[0], args.warmup, args.window)
        return

    port = _free_port()
    csms = subprocess.Popen(
        [sys.executable, "-m", "cli", "csms", "--port", str(port), "--heartbeat-interval", "300"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert csms.stdout is not None
        csms.stdout.readline()  # the "embedded CSMS on ..." line: it is listening
        url = f"ws://127.0.0.1:{port}/ocpp"
        report: dict[str, Any] = {"machine_cpus": os.cpu_count(), "runs": args.runs, "cases": []}
        print(
            f"{'stations':>8} {'client':>9} {'rt/s':>8} {'cpu µs/rt':>10} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'KB/station':>10} {'idle cpu%':>9}"
        )
        for stations in counts:
            case: dict[str, Any] = {"stations": stations}
            for mode in ("bare", "fleetsim-default-gc", "fleetsim", "idle"):
                runs = [
                    _run_client(mode, url, stations, args.warmup, args.window)
                    for _ in range(args.runs)
                ]
                medians = {key: _median(runs, key) for key in runs[0]}
                case[mode] = {"median": medians, "runs": runs}
                if mode == "idle":
                    print(
                        f"{stations:>8} {mode:>9} {'':>8} {'':>10} {'':>7} {'':>7} "
                        f"{medians['rss_kb_per_station']:>10.1f} "
                        f"{medians['idle_cpu_percent']:>9.2f}"
                    )
                else:
                    rss = medians.get("rss_kb_per_station")
                    print(
                        f"{stations:>8} {mode:>9} {medians['round_trips_per_s']:>8.0f} "
                        f"{medians['cpu_us_per_round_trip']:>10.1f} "
                        f"{medians['p50_ms']:>7.2f} {medians['p99_ms']:>7.2f} "
                        f"{'' if rss is None else f'{rss:.1f}':>10}"
                    )
            ratio = (
                case["fleetsim"]["median"]["cpu_us_per_round_trip"]
                / case["bare"]["median"]["cpu_us_per_round_trip"]
            )
            case["cpu_ratio_fleetsim_to_bare"] = ratio
            print(f"{stations:>8} CPU per round trip, fleetsim / bare: {ratio:.2f}x")
            untuned = case["fleetsim-default-gc"]["median"]["cpu_us_per_round_trip"]
            print(
                f"{stations:>8} CPU per round trip, fleetsim with the default collector / "
                f"tuned: {untuned / case['fleetsim']['median']['cpu_us_per_round_trip']:.2f}x"
            )
            report["cases"].append(case)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"written to {args.json}")
    finally:
        csms.terminate()
        csms.wait(timeout=10)


if __name__ == "__main__":
    main()
