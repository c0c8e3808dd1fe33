"""The baseline client: a plain Python fleet written the way a user would write one.

What a CSMS team writes when it needs a few hundred stations without fleetsim: the asyncio
`websockets` client and the `ocpp` package's `ChargePoint` (OCPP 2.1), each used as their
documentation shows, with every default left alone:

- `websockets.asyncio.client.connect(f"{url}/{station_id}", subprotocols=[Subprotocol("ocpp2.1")])`
  (a target that declines permessage-deflate, as bench/target.py and the embedded CSMS do,
  leaves the frames uncompressed, as for the other clients);
- `ocpp.v21.ChargePoint(station_id, connection)` with `cp.start()` as a task and
  `await cp.call(call.BootNotification(...))`, then `await cp.call(call.Heartbeat())` back to
  back.  The ocpp package validates each CALL and each answer against the official schema
  with `jsonschema` in the default thread pool (its default, `ASYNC_VALIDATION`), keeps a lock
  and a queue per station, and waits for each answer with `asyncio.wait_for`;
- the default asyncio event loop (not uvloop) and CPython's default garbage collector, and no
  logging configuration (the ocpp package logs every frame at INFO, which is then dropped;
  its examples turn it on, which would cost the baseline more).

The measurement is the one bench/roundtrip.py makes of its trio clients: round trips and the
process's CPU time (getrusage, every thread) over a window after a warm-up, with the same result
keys, so the figures sit in one table.  Connections open at most `OPEN_CONCURRENCY` at a time:
a thousand simultaneous handshakes would only measure the target's accept queue.

    python bench/baseline.py --url ws://127.0.0.1:9000/ocpp --stations 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import procstat
from ocpp.v21 import ChargePoint, call  # type: ignore[import-untyped]
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

#: Handshakes (and BootNotifications) in flight at once while the fleet opens.
OPEN_CONCURRENCY = 50
#: How long closing the fleet may take after the measurement; it is not measured.
CLOSE_TIMEOUT_S = 10.0


@dataclass
class Tally:
    """What the stations' loops share with the measurement.

    `running` is how the loops stop: cancelling them is not enough, because Python 3.11's
    `asyncio.wait_for` (inside `ChargePoint.call`) swallows a cancellation that arrives as the
    answer does, and a loop that lost its cancellation would run on for ever.
    """

    round_trips: int = 0
    latencies_s: list[float] = field(default_factory=list)
    running: bool = True


Loop = Callable[[Tally], Coroutine[Any, Any, None]]


async def measure(
    loops: list[Loop],
    warmup_s: float,
    window_s: float,
    mark: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `loops` as tasks, all counting into one `Tally`, and measure a `window_s` window
    after `warmup_s`.  `mark("window_start")` and `mark("window_end")` let a driver take the
    target's CPU over the same window."""
    tally = Tally()
    tasks = [asyncio.create_task(loop(tally)) for loop in loops]
    try:
        await asyncio.sleep(warmup_s)
        tally.latencies_s.clear()
        start_count, start_cpu, start_wall = (
            tally.round_trips,
            procstat.own_cpu_s(),
            time.perf_counter(),
        )
        if mark is not None:
            mark("window_start")
        await asyncio.sleep(window_s)
        round_trips = tally.round_trips - start_count
        cpu_s = procstat.own_cpu_s() - start_cpu
        wall_s = time.perf_counter() - start_wall
        if mark is not None:
            mark("window_end")
        window_latencies = sorted(tally.latencies_s)
    finally:
        tally.running = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a station's loop failed") from task.exception()
    return procstat.round_trip_figures(round_trips, cpu_s, wall_s, window_latencies)


async def _open_station(url: str, station_id: str) -> tuple[ClientConnection, ChargePoint, Any]:
    """Connect, start the ChargePoint's reader and boot: what every user's station does first."""
    connection = await connect(f"{url}/{station_id}", subprotocols=[Subprotocol("ocpp2.1")])
    charge_point = ChargePoint(station_id, connection)
    reader = asyncio.create_task(charge_point.start())
    response = await charge_point.call(
        call.BootNotification(
            charging_station={"model": "bench", "vendor_name": "bench"},
            reason="PowerUp",
        )
    )
    if response.status != "Accepted":
        raise RuntimeError(f"{station_id}: BootNotification {response.status}")
    return connection, charge_point, reader


async def run_fleet(
    url: str,
    stations: int,
    warmup_s: float,
    window_s: float,
    mark: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Open `stations` stations, loop Heartbeat on each, and measure (see `measure`)."""
    gc.collect()
    rss_before_kb = procstat.rss_kb()
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_gated(index: int) -> tuple[ClientConnection, ChargePoint, Any]:
        async with gate:
            return await _open_station(url, f"BASE{index:05d}")

    opened = await asyncio.gather(*(open_gated(index) for index in range(stations)))
    gc.collect()
    rss_kb_per_station = (procstat.rss_kb() - rss_before_kb) / stations

    def loop_for(charge_point: ChargePoint) -> Loop:
        async def loop(tally: Tally) -> None:
            while tally.running:
                sent_at = time.perf_counter()
                await charge_point.call(call.Heartbeat())
                tally.latencies_s.append(time.perf_counter() - sent_at)
                tally.round_trips += 1

        return loop

    try:
        result = await measure(
            [loop_for(charge_point) for _, charge_point, _ in opened], warmup_s, window_s, mark
        )
    finally:
        for _, _, reader in opened:
            reader.cancel()
        closing = asyncio.gather(
            *(connection.close() for connection, _, _ in opened), return_exceptions=True
        )
        # The process ends next, and the target sees any socket still open close then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
    result["rss_kb_per_station"] = rss_kb_per_station
    return result


def run_client(
    url: str,
    stations: int,
    warmup_s: float,
    window_s: float,
    mark: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the baseline fleet on the default asyncio event loop, as a user's script does."""
    return asyncio.run(run_fleet(url, stations, warmup_s, window_s, mark))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the CSMS, e.g. ws://127.0.0.1:9000/ocpp")
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=2.0, dest="warmup_s")
    parser.add_argument("--window", type=float, default=5.0, dest="window_s")
    args = parser.parse_args()
    print(json.dumps(run_client(args.url, args.stations, args.warmup_s, args.window_s)))


if __name__ == "__main__":
    main()
