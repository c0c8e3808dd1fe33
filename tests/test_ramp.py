"""The adaptive ramp: handshake slots bound the connections opening at once, handshakes that
time out slow the start rate down, slow ones hold it and quick ones win it back, and a
station that waited for a slot does not time out for it.

The fleet tests run real stations over real loopback sockets against the embedded CSMS behind
a proxy that holds back the CSMS's answer to each WebSocket handshake; they run on trio's real
clock (sockets and MockClock's autojump do not mix) with every wait bounded.  The rule tests
feed `Ramp` measured handshake times directly.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import pytest
import trio
from prometheus_client import CollectorRegistry
from rich.console import Console

from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.fleet import MIN_SLOTS, Fleet, Ramp
from fleetsim.simulator.link import ConnectError, Link
from fleetsim.simulator.metrics import RunStatsCollector
from fleetsim.simulator.report.progress import ProgressLine
from fleetsim.simulator.report.summary import build_summary, render_summary
from fleetsim.simulator.station import Connect, Station, StationConfig
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import ConnectionSettings, open_station_link
from tests.helpers import T0

# -- a CSMS whose handshakes are slow --------------------------------------------------------


@dataclass
class SlowHandshakes:
    """A loopback proxy in front of the embedded CSMS that holds the CSMS's answer to each
    WebSocket handshake back for `delay_s` (read when the answer comes, so a test can change
    it), and counts the handshakes in progress: from the TCP accept to the answer passed on."""

    upstream_port: int
    delay_s: float
    url: str = ""
    in_progress: int = 0
    most_in_progress: int = 0
    answered: int = 0

    async def serve(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.in_progress += 1
        self.most_in_progress = max(self.most_in_progress, self.in_progress)
        counted = True
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
            async with client, upstream, trio.open_nursery() as nursery:
                nursery.start_soon(_pump, client, upstream)
                answer = await upstream.receive_some()
                await trio.sleep(self.delay_s)
                self.in_progress -= 1
                counted = False
                self.answered += 1
                await client.send_all(answer)
                await _pump(upstream, client)
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if counted:
                self.in_progress -= 1


async def _pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    try:
        while data := await source.receive_some():
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def slow_csms(nursery: trio.Nursery, delay_s: float) -> SlowHandshakes:
    """The embedded CSMS behind a `SlowHandshakes` proxy, both served in `nursery`."""
    csms = Csms(CsmsConfig(heartbeat_interval_s=300))
    port = await nursery.start(csms.serve, "127.0.0.1", 0)
    proxy = SlowHandshakes(port, delay_s)
    proxy_port = await nursery.start(proxy.serve)
    proxy.url = f"ws://127.0.0.1:{proxy_port}/ocpp"
    return proxy


def _stations(count: int, stats: RunStats) -> list[Station]:
    clock = SimClock(T0)
    clock.start()
    # A station whose handshake timed out retries within 0.1 to 0.3 s, not 3 to 13 s.
    config = StationConfig(retry_backoff_wait_minimum_s=0.1, retry_backoff_random_range_s=0.2)
    return [Station(f"CP{i:03d}", i, config, clock, stats) for i in range(1, count + 1)]


def _connector(url: str, stats: RunStats, connect_timeout_s: float) -> Connect:
    settings = ConnectionSettings(csms_url=url, connect_timeout_s=connect_timeout_s)

    def connect(station: Station) -> AbstractAsyncContextManager[Link]:
        return open_station_link(
            station.id, settings, station.handle, spawn=station.spawn, observer=stats
        )

    return connect


async def _ramping_fleet(
    nursery: trio.Nursery,
    stations: list[Station],
    stats: RunStats,
    ramp: Ramp,
    *,
    delay_s: float,
    connect_timeout_s: float,
) -> tuple[SlowHandshakes, Fleet]:
    """`stations` ramping up through `ramp` in `nursery`, against a CSMS whose handshakes take
    `delay_s`."""
    proxy = await slow_csms(nursery, delay_s)
    fleet = Fleet(stations, _connector(proxy.url, stats, connect_timeout_s), 100, ramp=ramp)
    nursery.start_soon(fleet.run)
    return proxy, fleet


async def _until(holds: Callable[[], bool], timeout_s: float, poll_s: float = 0.01) -> None:
    """Wait until `holds()`, for at most `timeout_s`: the fleet's counters are the signal."""
    with trio.fail_after(timeout_s):
        while not holds():
            await trio.sleep(poll_s)


# -- the fleet over slow handshakes ------------------------------------------------------------


async def test_timeouts_slow_the_ramp_within_its_slots_and_quick_handshakes_win_it_back() -> None:
    stats = RunStats()
    # Timings with room for a busy test machine: the slow mark is a tenth of the timeout
    # (0.1 s); a handshake through the proxy times out (1 s) while it is held back 1.5 s,
    # and takes a few ms once it is not.
    ramp = Ramp(100, connect_timeout_s=1.0, stats=stats, adjust_every_s=0.1)
    assert ramp.slots.total_tokens == 10  # 100 stations/s x 0.1 s
    stations = _stations(200, stats)
    most_slots = most_in_flight = 0

    async def sample() -> None:
        nonlocal most_slots, most_in_flight
        while True:
            most_slots = max(most_slots, int(ramp.slots.total_tokens))
            most_in_flight = max(most_in_flight, stats.handshakes_in_flight)
            await trio.sleep(0.002)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        proxy, fleet = await _ramping_fleet(
            nursery, stations, stats, ramp, delay_s=1.5, connect_timeout_s=1.0
        )
        await _until(lambda: ramp.slowdowns >= 2, 20)
        slowed_to = ramp.rate_per_s
        assert slowed_to <= 25  # halved twice
        assert stats.ramp_rate_per_s == slowed_to
        assert ramp.slots.total_tokens == MIN_SLOTS  # 25/s x 0.1 s is less than the fewest
        assert stats.ramp_slowed_by_timeouts >= 1
        assert fleet.started < 200  # still ramping
        proxy.delay_s = 0.0
        await _until(lambda: ramp.rate_per_s >= 100, 20)  # won back step by step
        assert not ramp.done
        await _until(lambda: stats.stations_booted >= 200, 30, poll_s=0.05)
        nursery.cancel_scope.cancel()
    # The slots held the handshakes in flight to 100 stations/s x the slow mark at most, and
    # fewer as the rate fell (the proxy still holds the ones that timed out, so its own count
    # is no measure here).
    assert 0 < most_in_flight <= most_slots <= 10
    timed_out = stats.connection_attempts_by_outcome["timeout"]
    assert timed_out >= 2  # one per slowdown at least; the stations retried them
    assert stats.connection_attempts_by_outcome["ok"] == 200
    assert ramp.done and stats.ramp_rate_per_s == 0.0
    assert stats.ramp_lowest_per_s <= slowed_to
    assert stats.handshakes_in_flight == 0


async def test_slow_handshakes_that_do_not_time_out_hold_the_rate_and_never_cut_it() -> None:
    stats = RunStats()
    # Every handshake is slow (0.4 s, four times the 0.1 s mark) and none times out (2 s):
    # the rate stays the written one, and the slots bound the handshakes in flight.
    ramp = Ramp(100, connect_timeout_s=1.0, stats=stats, adjust_every_s=0.1)
    stations = _stations(60, stats)
    async with trio.open_nursery() as nursery:
        proxy, _ = await _ramping_fleet(
            nursery, stations, stats, ramp, delay_s=0.4, connect_timeout_s=2.0
        )
        await _until(lambda: stats.stations_booted >= 60, 30, poll_s=0.05)
        nursery.cancel_scope.cancel()
    assert stats.connection_attempts_by_outcome == {"ok": 60}
    assert (ramp.slowdowns, ramp.lowest_per_s) == (0, 100)
    assert stats.connect_duration_sum_s >= 60 * 0.4  # they were slow: the proxy held them
    assert proxy.most_in_progress <= 10


async def test_a_station_that_waited_for_a_slot_does_not_time_out_for_it() -> None:
    stats = RunStats()
    # 2 stations/s x 0.2 s would be 1 slot: the fewest a process keeps is MIN_SLOTS.
    ramp = Ramp(2, connect_timeout_s=2.0, stats=stats)
    assert ramp.slots.total_tokens == MIN_SLOTS
    stations = _stations(2 * MIN_SLOTS, stats)
    took_s: list[float] = []
    async with trio.open_nursery() as nursery:
        proxy = await slow_csms(nursery, delay_s=1.5)
        connect = ramp.gate(_connector(proxy.url, stats, 2.0))

        async def open_and_close(station: Station) -> None:
            started = trio.current_time()
            async with trio.open_nursery() as own, connect(station):
                took_s.append(trio.current_time() - started)
                own.cancel_scope.cancel()

        with trio.fail_after(10):
            async with trio.open_nursery() as connecting:
                for station in stations:
                    connecting.start_soon(open_and_close, station)
        assert proxy.most_in_progress == MIN_SLOTS
        # The same handshake without a slot to wait for, and slower than the timeout, does
        # time out: the timeout is live, it only starts when the handshake does.
        proxy.delay_s = 3.0
        with pytest.raises(ConnectError) as timed_out, trio.fail_after(5):
            async with _connector(proxy.url, stats, 2.0)(stations[0]):
                pass
        nursery.cancel_scope.cancel()
    assert timed_out.value.outcome == "timeout"
    assert len(took_s) == 2 * MIN_SLOTS
    # The second half waited a handshake for a slot, then had its own: longer than the
    # timeout in all, and none timed out.
    assert max(took_s) > 2.0


# -- the rules ---------------------------------------------------------------------------------


def test_a_spell_of_timeouts_halves_the_rate_once_and_slow_handshakes_hold_it() -> None:
    ramp = Ramp(1000, connect_timeout_s=10.0)
    assert ramp.slow_handshake_s == 1.0
    assert ramp.slots.total_tokens == 1000
    ramp.adjust(0.0)
    # Slow handshakes alone (2.5 s, past the 1 s mark) never cut the rate.
    for second in range(1, 4):
        ramp.observe(second - 0.5, 2.5)
        ramp.adjust(second)
    assert (ramp.rate_per_s, ramp.slowdowns) == (1000, 0)
    ramp.observe(3.5, 10.0, timed_out=True)
    ramp.observe(3.6, 10.0, timed_out=True)
    ramp.adjust(4.0)
    assert (ramp.rate_per_s, ramp.slowdowns, ramp.slots.total_tokens) == (500, 1, 500)
    assert ramp.slowed_by_timeouts == 2
    # Handshakes that began before the slowdown say nothing of the rate since.
    ramp.observe(3.9, 10.0, timed_out=True)
    ramp.adjust(5.0)
    assert ramp.rate_per_s == 500
    # One that began after it, and timed out, does.
    ramp.observe(4.5, 10.0, timed_out=True)
    ramp.adjust(6.0)
    assert (ramp.rate_per_s, ramp.slowdowns, ramp.slowed_by_timeouts) == (250, 2, 2)
    # Slow on average (1.5 s): the rate holds.
    ramp.observe(6.5, 0.5)
    ramp.observe(6.6, 2.5)
    ramp.adjust(7.0)
    assert ramp.rate_per_s == 250
    assert ramp.slots.total_tokens == 250  # 250/s x the slow mark, 1 s
    for second in range(8, 16):
        ramp.observe(second - 0.5, 0.9)  # quick enough: under the mark
        ramp.adjust(second)
    assert ramp.rate_per_s == pytest.approx(1000)  # +100/s per quick second, never above
    assert ramp.lowest_per_s == 250
    assert ramp.slots.total_tokens == 1000


def test_the_rate_never_falls_below_its_floor_nor_the_slots_below_their_fewest() -> None:
    ramp = Ramp(64, connect_timeout_s=10.0)
    for second in range(1, 20):
        ramp.observe(second - 0.5, 10.0, timed_out=True)
        ramp.adjust(second)
    assert ramp.rate_per_s == 1.0  # 1/64 of the written rate
    assert ramp.slots.total_tokens == MIN_SLOTS
    ramp.adjust(30.0)  # no handshake ended: no news, the rate holds
    assert ramp.rate_per_s == 1.0


# -- what the user sees ------------------------------------------------------------------------


def _slowed_stats() -> RunStats:
    stats = RunStats()
    ramp = Ramp(1000, connect_timeout_s=10.0, stats=stats)
    ramp.adjust(0.0)
    for _ in range(37):
        ramp.observe(0.5, 10.0, timed_out=True)
    ramp.adjust(1.0)
    ramp.observe(1.5, 10.0, timed_out=True)
    ramp.adjust(2.0)
    return stats


async def test_the_progress_line_says_the_ramp_was_slowed_and_why() -> None:
    stats = _slowed_stats()
    console = Console(file=io.StringIO(), width=200)
    line = ProgressLine(lambda: stats, 1000, console).line(1.0)
    assert "ramp slowed to 250/s: 37 handshakes timed out in a second" in line
    stats.ramp_rate_per_s = 1000.0
    assert "ramp slowed" not in ProgressLine(lambda: stats, 1000, console).line(1.0)


def test_the_summary_says_the_ramp_was_slowed_and_adds_up_over_workers() -> None:
    parts = [_slowed_stats(), _slowed_stats()]
    parts[1].ramp_slowed_by_timeouts = 1200
    total = RunStats.from_wire(RunStats.combined(parts).to_wire())
    summary = build_summary(
        total,
        scenario_name="ramp",
        stations_total=2000,
        wall_seconds=10.0,
        simulated_seconds=10.0,
        csms_url="ws://x",
        ocpp_version="2.1",
        errors=[],
    )
    assert summary["ramp"] == {
        "written_per_s": 2000.0,
        "lowest_per_s": 500.0,
        "slowdowns": 4,
        "slowed_by_timeouts": 1200,
    }
    out = io.StringIO()
    render_summary(summary, Console(file=out, width=200))
    assert (
        "ramp slowed to 500/s (written 2,000/s): up to 1,200 handshakes timed out in a second"
        in out.getvalue()
    )


def test_prometheus_has_the_handshakes_in_flight_and_the_ramp_rate() -> None:
    stats = _slowed_stats()
    stats.handshakes_in_flight = 7
    stats.handshakes_waiting = 3
    registry = CollectorRegistry()
    registry.register(RunStatsCollector(lambda: [stats, stats]))
    assert registry.get_sample_value("fleetsim_handshakes_in_flight") == 14
    assert registry.get_sample_value("fleetsim_handshakes_waiting") == 6
    assert registry.get_sample_value("fleetsim_ramp_up_stations_per_second") == 500
