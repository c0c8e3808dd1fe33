"""`run_scenario`: one whole run, from a validated scenario to its summary.

It starts what the scenario needs -- the embedded CSMS when no URL is given, the Prometheus
endpoint when asked, the frame trace -- ramps the fleet up, shows progress, and stops cleanly
when the duration is over or on Ctrl-C/SIGTERM: the summary is made and written at once, from
what the stations did until the stop, and then the stations close their WebSockets (which for
tens of thousands of stations on a busy machine takes seconds, and adds nothing to the
summary).  A second Ctrl-C ends the process at once.  A signal caught while the
process was still loading (stop_signals.py) stops the run as soon as it starts.

When no station ever connected and the first stations have all failed, the run stops early
and says why: a CSMS that is down does not deserve the full duration, and CI wants exit code 3.
A run in which the CSMS accepted no station says why too (no answer, a CALLERROR, Rejected),
and also exits 3.  Thresholds are judged on the final summary; those with abort_on_fail are
also checked on the live figures once a second (never per message) and stop the run when one
fails past its grace period.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import trio
from prometheus_client import REGISTRY, start_http_server
from rich.console import Console

from fleetsim.ev_models import load_catalogue

from .children import discard_output, wait_parent_gone
from .clock import SimClock
from .csms import Csms, DriverReservations, DriverSwaps, FirmwareRollout
from .csms.processes import csms_config_for
from .csms.server import CsmsTls
from .des import EventPump
from .faults import schedule_for
from .fleet import Fleet
from .gc_tuning import tune_collector
from .link import ConnectError, Link
from .metrics import (
    FleetStateCollector,
    RunStatsCollector,
    read_fleet_state,
    scrape_on_trio_thread,
)
from .report import ProgressLine, build_summary, conclude, publish
from .report.files import plot_load_curve, write_sessions_csv, write_site_power_csv
from .report.records import RunFrame, SiteFacts
from .scenario import Scenario
from .shard import Shard
from .station import Connect, EvseConfig, FirmwareConfig, Station, StationConfig
from .station.blocks import security
from .station.config import BatterySwapConfig, PaymentConfig
from .stats import RunStats
from .stop_signals import StopSignals, listening
from .thresholds import Threshold, ThresholdResult, first_to_abort, format_figure
from .trace import FrameTrace
from .transport import (
    CallDeadlines,
    ConnectionSettings,
    CredentialsRefused,
    TlsSettings,
    open_memory_link,
    open_station_link,
)
from .transport.websocket import WIRE_BYTES
from .world import World

__all__ = [
    "RunOptions",
    "RunOutcome",
    "ThresholdWatch",
    "run_scenario",
    "start_metrics_server",
    "station_config",
]

#: Stop early when this many stations (or all, if fewer) failed to connect and none succeeded.
UNREACHABLE_AFTER_FAILURES = 20
#: The faults' random stream, apart from the world's (`_seed_entropy` plus this).
_FAULTS_STREAM = 14
#: Run seconds between checks of the abort_on_fail thresholds on the live figures.
THRESHOLD_CHECK_EVERY_S = 1.0


@dataclass(frozen=True)
class RunOptions:
    """What a run needs besides the scenario (the CLI flags that are not scenario fields)."""

    trace_path: Path | None = None
    summary_json_path: Path | None = None
    show_progress: bool = True
    #: Run over in-memory links against the embedded CSMS instead of WebSockets (`--fast`,
    #: with trio's MockClock chosen by the caller).
    in_memory: bool = False
    #: Write sessions.csv, site_power.csv and load_curve.png here at the end.
    report_dir: Path | None = None
    #: Which part of a sharded fleet this is (the scenario is already cut to it).
    shard: Shard | None = None
    #: Local addresses the stations connect from, station i from address i modulo their number.
    source_addresses: tuple[str, ...] = ()
    #: Set in a worker process of `--workers` (its index): the run draws its random numbers
    #: from its own stream and reports to its parent through `report_to`.
    worker_index: int | None = None
    #: Where a worker writes its stats once a second and its outcome at the end, as JSON lines
    #: (see `workers.py`); None in a process that runs alone.
    report_to: BinaryIO | None = None
    #: Stop as on SIGTERM when stdin, a pipe from the parent (a worker's), closes: the parent
    #: is gone, and a worker must not run on alone.
    stop_when_stdin_closes: bool = False
    #: Judged on the summary at the end; those with abort_on_fail also while the run goes.
    #: A worker gets none: its parent judges the whole fleet.
    thresholds: tuple[Threshold, ...] = ()
    #: Write the thresholds and the failures the run saw as JUnit XML here.
    junit_path: Path | None = None


@dataclass(frozen=True)
class RunOutcome:
    summary: dict[str, Any]
    #: No station could connect, and the run stopped early.
    csms_unreachable: bool
    #: Stopped by a signal (not by its duration, nor by a threshold).
    interrupted: bool
    #: Worker processes (`--workers`) that ended without their final report.
    workers_died: int = 0
    #: Why the CSMS accepted none of the stations; None when it accepted one.
    no_station_accepted: str | None = None
    thresholds: tuple[ThresholdResult, ...] = ()

    @property
    def thresholds_failed(self) -> bool:
        return any(not result.passed for result in self.thresholds)


class ThresholdWatch:
    """Checks the abort_on_fail thresholds on the live figures on a timer; the first that
    fails past its grace period stops the run (k6's abortOnFail with delayAbortEval)."""

    def __init__(
        self,
        thresholds: Sequence[Threshold],
        live_summary: Callable[[], dict[str, Any]],
        console: Console,
    ) -> None:
        self.thresholds = [threshold for threshold in thresholds if threshold.abort_on_fail]
        self._live_summary = live_summary
        self._console = console
        #: The threshold that stopped the run, once one has.
        self.aborted_by: ThresholdResult | None = None

    async def run(self, stop: Callable[[], None]) -> None:
        """Check every `THRESHOLD_CHECK_EVERY_S` until one fails, then call `stop`."""
        if not self.thresholds:
            return
        started = trio.current_time()
        while True:
            await trio.sleep(THRESHOLD_CHECK_EVERY_S)
            run_s = trio.current_time() - started
            failed = first_to_abort(self.thresholds, self._live_summary(), run_s)
            if failed is not None:
                self.aborted_by = failed
                measured = format_figure(failed.measured or 0.0)
                self._console.print(
                    f"stopping: threshold {failed.threshold.text} failed after {run_s:.0f} s "
                    f"(measured {measured}), and abort_on_fail ends the run",
                    highlight=False,
                )
                stop()
                return


def station_config(scenario: Scenario) -> StationConfig:
    stations = scenario.stations
    csms = scenario.csms
    return StationConfig(
        vendor=stations.vendor,
        model=stations.model,
        firmware_version=stations.firmware_version,
        ocpp_version=scenario.ocpp_version,
        evses=tuple(
            EvseConfig(
                evse.max_power_w,
                evse.phases,
                tuple(evse.connectors),
                supply=evse.supply_kind,
                bidirectional=evse.bidirectional,
            )
            for evse in stations.evse_specs
        ),
        heartbeat_interval_s=stations.heartbeat_interval_s,
        meter_interval_s=stations.meter_interval_s,
        tx_start_points=tuple(stations.tx_start_points),
        connector_status_report=stations.connector_status_report,
        retry_backoff_wait_minimum_s=csms.retry_backoff_wait_minimum_s,
        retry_backoff_random_range_s=csms.retry_backoff_random_range_s,
        retry_backoff_repeat_times=csms.retry_backoff_repeat_times,
        security_profile=csms.security_profile,
        trusts_scenario_ca=csms.security.ca_file is not None,
        message_timeout_s=csms.call_timeout_s,
        variable_values=tuple(stations.variables.items()),
        firmware=FirmwareConfig(**stations.firmware.model_dump()),
        log_upload_s=stations.log_upload.duration_s,
        log_upload_failure_share=stations.log_upload.failure_share,
        priority_button_share=scenario.ev_fleet.priority_button_share,
        payment=_payment_config(scenario),
        battery_swap=None if stations.battery_swap is None else battery_swap_config(scenario),
        time_zone=stations.time_zone,
    )


def _payment_config(scenario: Scenario) -> PaymentConfig | None:
    """The stations' payment terminal and the drivers who pay at it, if they have one."""
    terminal = scenario.stations.payment_terminal
    if terminal is None:
        return None
    drivers = scenario.ev_fleet.payment
    return PaymentConfig(
        authorization_amount=terminal.authorization_amount,
        decline_share=terminal.decline_share,
        settlement_failure_share=terminal.settlement_failure_share,
        card_share=drivers.card_share,
        prepaid_share=drivers.prepaid_share,
        prepaid_balance=drivers.prepaid_balance,
        vat_number_share=drivers.vat_number_share,
    )


def battery_swap_config(scenario: Scenario) -> BatterySwapConfig | None:
    """The block-S settings of `scenario`'s stations, if they are battery-swap stations."""
    swap = scenario.stations.battery_swap
    if swap is None:
        return None
    return BatterySwapConfig(
        packs=swap.packs,
        pack_capacity_wh=swap.pack_capacity_kwh * 1000.0,
        pack_soc=swap.pack_soc,
        pack_soh_percent=swap.pack_soh_percent,
        max_soc=swap.max_soc,
        ready_soc=swap.ready_soc,
        take_out_s=swap.take_out_s,
        out_timeout_s=swap.out_timeout_s,
        no_take_share=swap.no_take_share,
        charging_id_token=swap.charging_id_token,
    )


def firmware_rollout(scenario: Scenario) -> FirmwareRollout | None:
    """The embedded CSMS's firmware rollout of `scenario`, if it asks for one."""
    settings = scenario.embedded_csms.firmware_rollout
    if settings is None:
        return None
    return FirmwareRollout(
        location=settings.location,
        request_id=settings.request_id,
        share=settings.share,
        signed=settings.signed,
        retries=settings.retries,
        retry_interval_s=settings.retry_interval_s,
        install_after_s=settings.install_after_s,
        max_parallel=settings.max_parallel,
    )


async def _roll_out_firmware(
    scenario: Scenario, rollout: FirmwareRollout, csms: Csms, clock: SimClock
) -> None:
    """Send the rollout's UpdateFirmware when its moment of simulated time comes."""
    settings = scenario.embedded_csms.firmware_rollout
    assert settings is not None
    await clock.sleep_until(settings.at_s)
    await rollout.roll_out(csms, clock.epoch_s())


def start_metrics_server(port: int, console: Console) -> None:
    server, _thread = start_http_server(port, addr="127.0.0.1" if port == 0 else "0.0.0.0")
    console.print(f"Prometheus metrics on http://127.0.0.1:{server.server_port}/metrics")


async def run_scenario(scenario: Scenario, options: RunOptions, console: Console) -> RunOutcome:
    """Run `scenario` to the end of its duration or until a signal; see the module docstring."""
    # Listening before anything starts: from here on a signal stops the run cleanly.
    with listening() as signals:
        return await _run_scenario(scenario, options, console, signals)


async def _run_scenario(
    scenario: Scenario, options: RunOptions, console: Console, signals: StopSignals
) -> RunOutcome:
    start = scenario.start or dt.datetime.now(dt.UTC)
    clock = SimClock(start, scenario.speed)
    clock.start()
    trace = None
    if options.trace_path is not None:
        options.trace_path.parent.mkdir(parents=True, exist_ok=True)
        trace = FrameTrace(options.trace_path.open("wb"), clock.timestamp)
    stats = RunStats(trace)
    collector = RunStatsCollector(lambda: [stats])
    REGISTRY.register(collector)
    password = scenario.resolved_password()
    config = station_config(scenario)
    catalogue = load_catalogue(scenario.ev_fleet.extra_models or None)
    stations_settings = scenario.stations
    by_index = {
        index: Station(stations_settings.station_id(index), index, config, clock, stats)
        for index in stations_settings.station_indices
    }
    stations = list(by_index.values())
    pump = EventPump(clock)
    shard = options.shard
    seed_entropy = _seed_entropy(scenario.seed, shard, options.worker_index)
    world = World(
        scenario,
        clock,
        pump,
        by_index,
        catalogue,
        seed_entropy=seed_entropy,
        keep_records=options.report_dir is not None,
    )
    faults = schedule_for(
        scenario,
        stations,
        by_index,
        clock=clock,
        start=start,
        stats=stats,
        rng=np.random.default_rng([*seed_entropy, _FAULTS_STREAM]),
    )

    def fleet_state() -> dict[str, Any]:
        return read_fleet_state(world, stations, WIRE_BYTES)

    state_collector = FleetStateCollector(
        scrape_on_trio_thread(trio.lowlevel.current_trio_token(), fleet_state),
        [site.name for site in world.sites],
    )
    REGISTRY.register(state_collector)
    rollout: FirmwareRollout | None = None
    wall_start = time.perf_counter()
    csms_url = scenario.csms.url
    #: The embedded CSMS's certificates when it serves wss:// (security profile 2 or 3).
    csms_tls: CsmsTls | None = None
    tls_directory = None

    def summary_now(errors: list[str]) -> dict[str, Any]:
        summary = build_summary(
            stats,
            scenario_name=scenario.name,
            stations_total=len(stations),
            wall_seconds=time.perf_counter() - wall_start,
            simulated_seconds=clock.sim_now(),
            csms_url=csms_url or "memory:",
            ocpp_version=scenario.ocpp_version,
            errors=errors,
        )
        summary["shard"] = None if shard is None else str(shard)
        summary["workers"] = 1
        summary["workers_died"] = 0
        summary["ev_sessions"] = world.ev_sessions
        summary["evs_turned_away"] = world.turned_away
        summary["evs_with_reservation"] = world.reservations.arrived
        if rollout is not None:
            summary["firmware_rollout"] = rollout.summary()
        summary["registrations"] = dict(
            sorted(Counter(station.registration for station in stations).items())
        )
        return summary

    def conclude_at_stop(
        unreachable: bool, interrupted: bool, stopped_wall_s: float
    ) -> tuple[dict[str, Any], list[ThresholdResult]]:
        """The summary of the run as it stands at its stop, published (and, in a worker, sent
        to the parent) before the stations close their connections."""
        for station in stations:
            station.account_energy()
        # What the simulation made but the CSMS never got: events left in the offline queues.
        stats.transaction_events_unsent = sum(len(station.tx_queue) for station in stations)
        errors = _distinct_errors(stations, fleet.failures)
        if unreachable:
            errors.insert(
                0,
                f"the run stopped early: the first {stats.connection_failures} connection "
                "attempts failed and none succeeded",
            )
        summary = summary_now(errors)
        # EVs still plugged in: their visits end as the stations close, and count with them
        # (a swap station's packs charging in its slots are not visits).
        summary["ev_sessions"] += sum(
            1
            for station in stations
            if station.config.battery_swap is None
            for evse in station.evses
            if evse.session is not None
        )
        summary["stop"] = {
            "seconds": round(time.perf_counter() - stopped_wall_s, 3),
            "cut_short": [],
        }
        results: list[ThresholdResult] = []
        if options.report_to is None:
            # A worker's parent concludes for the whole fleet.
            aborted_by = watch.aborted_by.threshold if watch.aborted_by is not None else None
            results = conclude(
                summary, options.thresholds, aborted_by=aborted_by, interrupted=interrupted
            )
        else:
            _write_report_line(
                options.report_to,
                {
                    "final": stats.to_wire(),
                    "state": fleet_state(),
                    "summary": summary,
                    "csms_unreachable": unreachable,
                    "interrupted": interrupted,
                },
            )
        publish(
            summary,
            results,
            console,
            summary_json_path=options.summary_json_path,
            junit_path=options.junit_path,
        )
        return summary, results

    watch = ThresholdWatch(options.thresholds, lambda: summary_now([]), console)
    try:
        async with trio.open_nursery() as services:
            csms: Csms | None = None
            if csms_url is None or options.in_memory:
                csms_config = csms_config_for(scenario)
                if scenario.csms.security_profile == 3 and not options.in_memory:
                    # Profile 3: the certificate says who a station is; it sends no password.
                    csms_config = dataclasses.replace(csms_config, basic_auth_passwords=None)
                rollout = firmware_rollout(scenario)
                if rollout is not None:
                    csms_config = dataclasses.replace(
                        csms_config,
                        response_overrides={
                            **csms_config.response_overrides,
                            **rollout.response_overrides(),
                        },
                    )
                csms = Csms(csms_config, clock=clock.epoch_s)
                world.reservation_desk = DriverReservations(csms)
                world.swap_desk = DriverSwaps(csms)
                if rollout is not None:
                    services.start_soon(_roll_out_firmware, scenario, rollout, csms, clock)
                if not options.in_memory:
                    profile = scenario.csms.security_profile
                    if profile >= 2:
                        tls_directory = tempfile.TemporaryDirectory(prefix="fleetsim-tls-")
                        csms_tls = CsmsTls.create(profile, Path(tls_directory.name))
                        # One CA signs the certificates made at start and the stations'
                        # renewals (A02/A03), so a renewed certificate is trusted too.
                        csms.certificates.authority = csms_tls.authority
                    port = await services.start(
                        partial(
                            csms.serve,
                            ssl_context=None if csms_tls is None else csms_tls.server_context,
                        ),
                        "127.0.0.1",
                        0,
                    )
                    scheme = "ws" if csms_tls is None else "wss"
                    csms_url = f"{scheme}://127.0.0.1:{port}/ocpp"
                    console.print(
                        f"embedded CSMS on {csms_url}"
                        + (
                            ""
                            if csms_tls is None
                            else f" (security profile {profile}, CA in {csms_tls.ca_file})"
                        )
                    )
            if scenario.metrics_port is not None:
                start_metrics_server(scenario.metrics_port, console)
            deadlines = CallDeadlines()
            services.start_soon(deadlines.run)
            services.start_soon(pump.run)
            world.start()
            connect = _connector(
                scenario,
                options,
                csms,
                csms_url or "memory:",
                password,
                stats,
                deadlines,
                csms_tls=csms_tls,
            )
            if faults is not None:
                connect = faults.connect(connect)
                services.start_soon(faults.run)
            fleet = Fleet(
                stations,
                connect,
                stations_settings.ramp_up_per_s,
                after_ramp_up=tune_collector,
                connect_timeout_s=scenario.csms.connect_timeout_s,
                stats=stats,
            )
            run_scope = trio.CancelScope()
            if scenario.duration_s is not None:
                run_scope.deadline = trio.current_time() + scenario.duration_s
            if signals.caught_before:
                run_scope.cancel()  # stopped while loading: no station starts
            #: Set once the run has stopped and its summary is out: the summary, the
            #: thresholds' results, and whether the CSMS was unreachable, the run interrupted.
            concluded: list[tuple[dict[str, Any], list[ThresholdResult], bool, bool]] = []
            #: The stations' nursery, once it runs.
            stations_nursery: list[trio.Nursery] = []
            showing = trio.CancelScope()

            def finish(unreachable: bool) -> None:
                """The run is over.  Its summary is made now, from what the fleet did until
                this moment, and only then do the stations close their connections: with
                tens of thousands of stations on a busy machine that takes seconds, and a
                stop must not wait for it to say what the run did."""
                if concluded or not stations_nursery:
                    return
                stopped_wall_s = time.perf_counter()
                stats.stopping = True
                # The trace ends where the summary does: frames the closing stations still
                # send are neither counted in it nor traced.
                stats.trace = None
                # A run that reached its duration stopped at the deadline, whichever task
                # trio runs first after it.
                stopped_at = min(trio.current_time(), run_scope.deadline)
                world.stop((stopped_at - clock.trio_origin) * clock.speed)
                interrupted = (
                    run_scope.cancel_called
                    and (scenario.duration_s is None or stopped_at < run_scope.deadline)
                    and watch.aborted_by is None
                )
                # The live view takes itself down when it next wakes, printing nothing more.
                showing.cancel()
                summary, results = conclude_at_stop(unreachable, interrupted, stopped_wall_s)
                concluded.append((summary, results, unreachable, interrupted))
                stations_nursery[0].cancel_scope.cancel()

            def stop_now() -> None:
                """Stop the run, summing it up in this very task: on a machine too busy for
                the fleet, every trip through trio's scheduler takes seconds, and a stop
                signal must not wait for several."""
                run_scope.cancel()
                finish(unreachable=False)

            services.start_soon(_stop_on_signals, stop_now, console, signals)
            if options.stop_when_stdin_closes:
                services.start_soon(_stop_when_parent_is_gone, stop_now, console)
            async with trio.open_nursery() as running:
                stations_nursery.append(running)
                if not run_scope.cancel_called:
                    running.start_soon(fleet.run)
                if options.report_to is not None:
                    # In `running`: no report follows the final one, sent at the stop.
                    running.start_soon(_report_stats, stats, fleet_state, options.report_to)
                running.start_soon(watch.run, stop_now)
                if options.show_progress:
                    progress = ProgressLine(
                        lambda: stats,
                        len(stations),
                        console,
                        clock=clock,
                        duration_s=scenario.duration_s,
                        site_power_w=lambda: {
                            site.name: (site.import_w, site.export_w) for site in world.sites
                        },
                        active_faults=None if faults is None else faults.active,
                    )
                    show = (
                        partial(progress.run_simulated, clock)
                        if options.in_memory
                        else progress.run
                    )
                    running.start_soon(_show_progress, showing, show)
                reached_unreachable = False
                with run_scope:
                    reached_unreachable = await _watch_reachability(stats, len(stations))
                finish(reached_unreachable)
            ((summary, results, unreachable, interrupted),) = concluded
            services.cancel_scope.cancel()
    finally:
        REGISTRY.unregister(collector)
        REGISTRY.unregister(state_collector)
        if trace is not None:
            trace.close()
        if tls_directory is not None:
            tls_directory.cleanup()
    world.end()
    if options.report_dir is not None:
        _write_reports(world, options.report_dir, scenario.name, clock)
        console.print(f"reports in {options.report_dir}")
    return RunOutcome(
        summary,
        unreachable,
        interrupted,
        no_station_accepted=summary.get("no_station_accepted"),
        thresholds=tuple(results),
    )


def _seed_entropy(seed: int, shard: Shard | None, worker_index: int | None) -> tuple[int, ...]:
    """The seed of this process's random numbers: shards and workers each draw their own."""
    entropy = [seed]
    if shard is not None:
        entropy.append(shard.index)
    if worker_index is not None:
        entropy.append(worker_index)
    return tuple(entropy)


#: How often a worker sends its parent its counters (the parent's progress line and metrics
#: are this fresh).
REPORT_EVERY_S = 1.0


async def _report_stats(
    stats: RunStats, fleet_state: Callable[[], dict[str, Any]], report_to: BinaryIO
) -> None:
    while True:
        await trio.sleep(REPORT_EVERY_S)
        _write_report_line(report_to, {"stats": stats.to_wire(), "state": fleet_state()})


def _write_report_line(report_to: BinaryIO, message: dict[str, Any]) -> None:
    try:
        report_to.write(orjson.dumps(message) + b"\n")
        report_to.flush()
    except BrokenPipeError:
        discard_output(report_to)  # the parent is gone; the run still ends cleanly
    except ValueError:
        pass  # the stream is closed: the same


def _connector(
    scenario: Scenario,
    options: RunOptions,
    csms: Csms | None,
    csms_url: str,
    password: str | None,
    stats: RunStats,
    deadlines: CallDeadlines,
    *,
    csms_tls: CsmsTls | None = None,
) -> Connect:
    if options.in_memory:
        assert csms is not None
        serve = csms.attach
        version = scenario.ocpp_version
        call_timeout_s = scenario.csms.call_timeout_s
        validate = scenario.csms.validate_outgoing

        def connect_in_memory(station: Station) -> AbstractAsyncContextManager[Link]:
            if station.connection_profile is not None:
                return _unreachable_in_memory(station)
            return open_memory_link(
                station.id,
                serve,
                station.handle,
                spawn=station.spawn,
                observer=stats,
                ocpp_version=version,
                call_timeout_s=call_timeout_s,
                validate_outgoing=validate,
            )

        return connect_in_memory
    settings = ConnectionSettings(
        csms_url=csms_url,
        ocpp_version=scenario.ocpp_version,
        basic_auth_password=password,
        tls=fleet_tls_settings(scenario, csms_tls),
        connect_timeout_s=scenario.csms.connect_timeout_s,
        call_timeout_s=scenario.csms.call_timeout_s,
        validate_outgoing=scenario.csms.validate_outgoing,
        source_addresses=options.source_addresses,
    )
    sources = options.source_addresses

    def connect_websocket(station: Station) -> AbstractAsyncContextManager[Link]:
        profile = station.connection_profile
        station_settings = settings if profile is None else _profile_settings(settings, profile)
        own_password = security.connection_password(station)
        if own_password is not None:
            station_settings = dataclasses.replace(
                station_settings, basic_auth_password=own_password
            )
        return open_station_link(
            station.id,
            station_settings,
            station.handle,
            spawn=station.spawn,
            observer=stats,
            deadlines=deadlines,
            source_address=sources[station.index % len(sources)] if sources else None,
            client_identity=_client_identity(station, station_settings, csms_tls),
        )

    return reporting_to_security(connect_websocket)


def reporting_to_security(connect: Connect) -> Connect:
    """`connect`, telling block A how each attempt went: a new password accepted or refused
    (A01), a CSMS certificate or TLS version the station refused (security events)."""
    return partial(_ReportingToSecurity, connect)


class _ReportingToSecurity:
    """One connection of `reporting_to_security`.  A class of two slots rather than a
    generator-based context manager, whose suspended frame every connected station would keep
    for as long as its connection lasts."""

    __slots__ = ("_opening", "_station")

    def __init__(self, connect: Connect, station: Station) -> None:
        self._station = station
        self._opening = connect(station)

    async def __aenter__(self) -> Link:
        try:
            link = await self._opening.__aenter__()
        except CredentialsRefused:
            security.password_refused(self._station)
            raise
        except ConnectError as exc:
            security.connection_failed(self._station, exc.outcome)
            raise
        security.password_accepted(self._station)
        return link

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._opening.__aexit__(*exc_info)


def fleet_tls_settings(scenario: Scenario, csms_tls: CsmsTls | None = None) -> TlsSettings:
    """The stations' TLS settings: the scenario's, or those of the embedded CSMS's CA."""
    security = scenario.csms.security
    return TlsSettings(
        profile=scenario.csms.security_profile,
        ca_file=str(csms_tls.ca_file) if csms_tls is not None else security.ca_file,
        client_cert=security.client_cert,
        client_key=security.client_key,
    )


def _client_identity(
    station: Station, settings: ConnectionSettings, csms_tls: CsmsTls | None
) -> tuple[bytes, bytes] | None:
    """The certificate a station presents under profile 3 when not the scenario's files: the
    one a certificate renewal gave it, else one the embedded CSMS issues it now."""
    if settings.tls.profile < 3:
        return None
    identity = station.client_identity
    if identity is not None:
        return identity.chain_pem, identity.key_pem
    if csms_tls is not None and settings.tls.client_cert is None:
        return csms_tls.station_identity(station.id)
    return None


def _profile_settings(
    settings: ConnectionSettings, profile: Mapping[str, Any]
) -> ConnectionSettings:
    """How a station reaches the CSMS of a network profile the CSMS gave it (B09/B10), with
    the profile's security profile (A05: raised by the CSMS, never lowered)."""
    security_profile = int(profile.get("securityProfile", settings.tls.profile))
    return dataclasses.replace(
        settings,
        csms_url=profile["ocppCsmsUrl"],
        basic_auth_password=profile.get("basicAuthPassword", settings.basic_auth_password),
        tls=dataclasses.replace(settings.tls, profile=security_profile),
    )


@asynccontextmanager
async def _unreachable_in_memory(station: Station) -> AsyncIterator[Link]:
    """A network profile's CSMS, which an in-memory run cannot reach: only the embedded CSMS
    is there, so the station falls back to its other profiles as a real one would (B10)."""
    url = station.connection_profile["ocppCsmsUrl"] if station.connection_profile else "?"
    raise ConnectError(
        f"station {station.id}: {url} (from SetNetworkProfile) cannot be reached in an "
        "in-memory run, where only the embedded CSMS exists",
        "refused",
    )
    yield  # pragma: no cover - never reached; makes this a generator


async def _show_progress(scope: trio.CancelScope, show: Callable[[], Awaitable[None]]) -> None:
    """Show the live view until `scope` is cancelled."""
    with scope:
        await show()


async def _watch_reachability(stats: RunStats, stations_total: int) -> bool:
    """Return True (and so end the run) once the CSMS has proven unreachable; else never."""
    needed = min(stations_total, UNREACHABLE_AFTER_FAILURES)
    while True:
        await trio.sleep(0.1)
        if stats.stations_connected_peak > 0:
            await trio.sleep_forever()
        if stats.connection_failures >= needed:
            return True


async def _stop_on_signals(
    stop: Callable[[], None], console: Console, signals: StopSignals
) -> None:
    async for received in signals.counted():
        if received == 1:
            console.print("stopping: closing the stations' connections (again to quit now)")
            stop()
        else:
            os._exit(130)


async def _stop_when_parent_is_gone(stop: Callable[[], None], console: Console) -> None:
    await wait_parent_gone()
    console.print("stopping: the parent process is gone")
    stop()


def _write_reports(world: World, directory: Path, title: str, clock: SimClock) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    start_epoch_s = clock.epoch_s(0.0)
    frame = RunFrame(
        start_epoch_s,
        world.end_s,
        tuple(
            SiteFacts(site.name, round(site.spec.utc_offset_h * 3600), site.capacity_w)
            for site in world.sites
        ),
    )
    write_sessions_csv(world.session_records, directory / "sessions.csv", frame)
    write_site_power_csv(world.power_samples, start_epoch_s, directory / "site_power.csv", frame)
    plot_load_curve(
        world.power_samples, world.marks, start_epoch_s, directory / "load_curve.png", title, frame
    )


def _distinct_errors(stations: list[Station], failures: list[Any]) -> list[str]:
    """The different reasons stations could not connect or failed, each once, first five."""
    seen: dict[str, str] = {}
    for station in stations:
        error = station.last_error
        if error is None:
            continue
        kind = error.replace(station.id, "{station}")
        seen.setdefault(kind, error)
        if len(seen) >= 5:
            break
    return list(seen.values()) + [f"station {f.station_id} failed: {f.error}" for f in failures]
