"""The embedded CSMS as several processes on one port, and its settings from a scenario.

Why several processes: one Python process runs on one core, and may hold at most as many
sockets as its open-file limit allows (20,000 on some machines, not raisable).  A CSMS that is
the target of a large load test needs more of both.  `fleetsim csms --processes K` starts K
processes of `fleetsim csms`, each with its own trio loop and its own `Csms`, all listening on
the same host and port with SO_REUSEPORT; the kernel hands each new connection to one of them
by a hash of the connection's addresses.

What that means for stations: state is per process.  A station that reconnects lands on
whichever process the kernel picks, which need not be the one that saw its boot or its
transactions, and a CSMS-initiated call reaches only the stations connected to the process
that makes it.  For a load target, which answers what stations send, that is fine; a test that
reads the CSMS's state of a station needs one process.

The supervisor (`run_processes`):

- reserves the port first, with a socket bound with SO_REUSEPORT but not listening (so it is
  given no connections), held until every process listens: `--port 0` then names one concrete
  port that no other program can take in the meantime;
- prints the usual `embedded CSMS on ws://HOST:PORT/ocpp ...` line once, when every process
  listens, because scripts read that first line to find the port;
- forwards SIGINT and SIGTERM to the processes, and kills them on a second signal; they run in
  their own session, so a terminal's Ctrl-C reaches them only through the supervisor, once;
- stops the other processes and fails when one dies: the stations it served lost their
  connections and the CSMS lost part of its capacity, which would distort a load test
  silently if the run went on;
- sums the processes' counters into the usual status line, with the connections each process
  accepted.

A worker process (`ServeOptions.process_number` set) writes JSON lines to its stdout for the
supervisor (`listening`, `status`, `stopped`) and stops when its stdin, a pipe from the
supervisor, closes, so no worker outlives a supervisor that was killed.  The CSMS that a
`fleetsim run --workers` parent starts (`embedded_csms_command`) stops the same way when that
parent is gone, whether it runs as one process or as a supervisor.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from fleetsim.ev_models import drivers_id_tokens

from ..children import (
    discard_output,
    lines,
    python_command,
    stop_children,
    wait_parent_gone,
)
from ..gc_tuning import tune_collector
from ..limits import raise_open_file_limit
from .afrr import AfrrSignals, signals_from_frequency_events
from .boot_pushes import (
    DisplayMessagePush,
    LocalListPush,
    boot_push_reactions,
    combine_reactions,
)
from .charging_profiles import TxDefaultProfilePush, tx_default_profile_reactions
from .csms import Csms, CsmsStatistics
from .der_controls import DerCurvePush, default_curve
from .dynamic_schedules import DailyCurve, DynamicSchedule
from .log_collection import LogCollection
from .policy import CsmsConfig, DynamicValues, Timer
from .priority_charging import PriorityCharging
from .server import CsmsTls, bind_reuse_port
from .smart_charging import smart_charging_reactions
from .tariffs import default_tariff, tariff_reactions
from .web_payments import WebPayments

if TYPE_CHECKING:
    from ..scenario import Scenario

__all__ = [
    "CannotListen",
    "CsmsProcessFailed",
    "ServeOptions",
    "WorkerCommand",
    "afrr_signals_for",
    "csms_config_for",
    "dynamic_schedule_for",
    "embedded_csms_command",
    "local_list_for",
    "process_command",
    "run_processes",
    "serve_in_this_process",
    "standalone_csms_config",
    "tx_default_profile_for",
]

#: The counters a worker reports, in the order the supervisor's lines name them.
_COUNTERS = ("stations_connected", "stations_known", "connections_accepted", "messages_received")
#: Wall seconds each process gets to start listening (imports and schema loading included).
STARTUP_TIMEOUT_S = 60.0
#: Wall seconds between forwarding a stop signal and killing the processes that still run;
#: each process closes its connections within its own 2 s bound.
STOP_GRACE_S = 15.0

#: The command line of worker process `number` listening on `port`.
WorkerCommand = Callable[[int, int], Sequence[str]]
#: The exit code with which fleetsim refuses its arguments (cli/exit_codes.py's BAD_SCENARIO).
_BAD_ARGUMENTS_EXIT_CODE = 2


class CannotListen(Exception):
    """The CSMS cannot listen on the address and port asked for; the message says what to do."""


class CsmsProcessFailed(Exception):
    """A process of a multi-process CSMS ended on its own; the message names it."""

    def __init__(self, message: str, *, exit_code: int | None, while_starting: bool) -> None:
        super().__init__(message)
        #: The process's own exit code (negative: killed by that signal), None if it still ran.
        self.exit_code = exit_code
        #: It ended before it was listening: usually a bad argument or an unusable port.
        self.while_starting = while_starting

    @property
    def bad_arguments(self) -> bool:
        """It refused its arguments, which are the supervisor's: nothing was served."""
        return self.while_starting and self.exit_code == _BAD_ARGUMENTS_EXIT_CODE


# -- the settings --------------------------------------------------------------------------


def csms_config_for(scenario: Scenario) -> CsmsConfig:
    """The embedded CSMS of `scenario`: its heartbeat interval, password, the share of
    transactions it deauthorizes, the drivers it ranks with a chargingPriority, its
    reactions (smart charging, V2X, the local list and display message it pushes at boot, the
    daily log collection, the DER curve it sets, priority charging, the Dynamic profile) and
    its timers (web payments, dynamic schedule updates, AFRR signals), which run at the
    scenario's speed from its start.  (Reservations for drivers who book ahead
    are the world's to ask for: `reservations.DriverReservations`, in the run's own process.)

    The one place that turns a scenario into CSMS settings, so `fleetsim run` (embedded CSMS)
    and `fleetsim csms --scenario` answer stations the same way.  Messages are not recorded:
    both serve load, and a recorded message per CALL would grow without bound.  Raises
    `ScenarioError` when `csms.password_env` names an unset variable.
    """
    embedded = scenario.embedded_csms
    afrr = afrr_signals_for(scenario)
    tables = [
        smart_charging_reactions(
            tx_limit_w=embedded.tx_limit_w,
            v2x_operation_mode=embedded.v2x_operation_mode,
            v2x_setpoint_w=embedded.v2x_setpoint_w,
            v2x_max_power_w=embedded.v2x_max_power_w,
            nominal_hz=float(scenario.grid.nominal_hz),
            afrr=afrr,
        ),
        boot_push_reactions(
            local_list=local_list_for(scenario),
            display_message=None
            if embedded.display_message is None
            else DisplayMessagePush(
                embedded.display_message.text,
                embedded.display_message.language,
                embedded.display_message.id,
            ),
        ),
        tx_default_profile_reactions(tx_default_profile_for(scenario)),
    ]
    der = embedded.der_control
    if der is not None:
        tables.append(
            DerCurvePush(
                der.control_type,
                der.curve or default_curve(der.control_type, float(scenario.grid.nominal_hz)),
                der.priority,
                der.control_id,
                der.after_boot,
                der.on_alarm,
            ).reactions()
        )
    tariff = embedded.default_tariff
    if tariff is not None:
        tables.append(
            tariff_reactions(
                default_tariff(
                    currency=tariff.currency,
                    price_kwh=tariff.price_kwh,
                    price_minute=tariff.price_minute,
                    idle_price_minute=tariff.idle_price_minute,
                    fixed=tariff.fixed,
                ),
                time_zone=scenario.stations.time_zone,
            )
        )
    logs = embedded.log_collection
    if logs is not None:
        tables.append(
            LogCollection(
                logs.time_of_day_s, logs.share, logs.log_type, logs.remote_location
            ).reactions()
        )
    timers: list[Timer] = []
    dynamic_values: dict[int, DynamicValues] = {}
    priority = embedded.priority_charging
    if priority is not None:
        tables.append(
            PriorityCharging(
                priority.limit_w, priority.id, priority.share, priority.driver_requests
            ).reactions()
        )
    dynamic = dynamic_schedule_for(scenario)
    if dynamic is not None:
        tables.append(dynamic.reactions())
        timers.append(dynamic.timer)
        dynamic_values[dynamic.profile_id] = dynamic.values
    web = embedded.web_payments
    if web is not None:
        timers.append(
            WebPayments(
                every_s=web.every_s,
                station_share=web.station_share,
                delay_s=web.delay_s,
                timeout_s=web.timeout_s,
                abandon_share=web.abandon_share,
            ).timer
        )
    if afrr is not None:
        tables.append(afrr.reactions())
        timers.append(afrr.timer)
    reactions = combine_reactions(*tables)
    return CsmsConfig(
        heartbeat_interval_s=scenario.stations.heartbeat_interval_s,
        record_messages=False,
        basic_auth_passwords=scenario.resolved_password(),
        deauthorize_share=embedded.deauthorize_share,
        priority_share=embedded.priority_share,
        charging_priority=embedded.charging_priority,
        reactions=reactions,
        steers_bidirectional_evs=embedded.v2x_operation_mode is not None,
        timers=tuple(timers),
        clock_speed=scenario.speed,
        run_start_epoch_s=None if scenario.start is None else scenario.start.timestamp(),
        dynamic_values=dynamic_values,
    )


def dynamic_schedule_for(scenario: Scenario) -> DynamicSchedule | None:
    """The Dynamic TxDefaultProfile of `embedded_csms.dynamic_profile`, or None."""
    settings = scenario.embedded_csms.dynamic_profile
    if settings is None:
        return None
    return DynamicSchedule(
        DailyCurve([(point.at_s, point.limit_w) for point in settings.curve]),
        update_interval_s=settings.update_interval_s,
        pull_interval_s=settings.pull_interval_s,
        profile_id=settings.id,
        stack_level=settings.stack_level,
    )


def afrr_signals_for(scenario: Scenario) -> AfrrSignals | None:
    """The AFRR signals of `embedded_csms.afrr`: those of the grid's frequency events and
    those listed, or None."""
    settings = scenario.embedded_csms.afrr
    if settings is None:
        return None
    signals = [(signal.at_s, signal.signal) for signal in settings.signals]
    if settings.from_grid_events:
        signals += signals_from_frequency_events(
            ((e.at_s, e.duration_s, e.frequency_hz) for e in scenario.grid.events),
            float(scenario.grid.nominal_hz),
            settings.full_activation_hz,
        )
    return AfrrSignals(signals)


def tx_default_profile_for(scenario: Scenario) -> TxDefaultProfilePush | None:
    """The daily TxDefaultProfile of `embedded_csms.tx_default_profile`, or None."""
    settings = scenario.embedded_csms.tx_default_profile
    if settings is None:
        return None
    return TxDefaultProfilePush(
        [(period.at_s, period.limit_w) for period in settings.periods],
        profile_id=settings.id,
        stack_level=settings.stack_level,
    )


def local_list_for(scenario: Scenario) -> LocalListPush | None:
    """The local list of `embedded_csms.local_list`: the first `entries` of the tokens the
    scenario's drivers present, made by the function that makes each driver's token."""
    settings = scenario.embedded_csms.local_list
    if settings is None:
        return None
    pool = scenario.ev_fleet.id_tokens
    types = scenario.ev_fleet.id_token_types
    tokens = drivers_id_tokens(
        pool.pattern, pool.count, pool.type, None if types is None else list(types)
    )
    return LocalListPush(
        [
            {"idToken": value, "type": token_type}
            for value, token_type in itertools.islice(tokens, settings.entries)
        ],
        settings.items_per_message,
    )


def standalone_csms_config(
    scenario: Scenario | None,
    *,
    heartbeat_interval_s: int | None = None,
    password: str | None = None,
) -> CsmsConfig:
    """The settings of `fleetsim csms`: the scenario's, if one is given, with each explicit
    value overriding it; without a scenario the defaults of `CsmsConfig`, no password.  Its
    clock is wall time, so its timers run at speed 1 from its first connection, whatever
    speed and start the scenario gives its own runs."""
    config = (
        csms_config_for(scenario) if scenario is not None else CsmsConfig(record_messages=False)
    )
    overrides: dict[str, Any] = {"clock_speed": 1.0, "run_start_epoch_s": None}
    if heartbeat_interval_s is not None:
        overrides["heartbeat_interval_s"] = heartbeat_interval_s
    if password is not None:
        overrides["basic_auth_passwords"] = password
    return dataclasses.replace(config, **overrides)


# -- one process ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Where and how one CSMS process serves."""

    host: str
    port: int
    #: Listen with SO_REUSEPORT, so other processes can share the port.
    reuse_port: bool = False
    #: Wall seconds between status lines.
    status_interval_s: float = 10.0
    #: Set when a supervisor started this process: its number, and JSON lines on stdout.
    process_number: int | None = None
    #: Stop when stdin, a pipe from the process that started this one, closes (a worker
    #: always does).
    until_stdin_closes: bool = False
    #: Serve wss:// with these certificates (security profiles 2 and 3); None: ws://.
    tls: CsmsTls | None = None


def serve_in_this_process(config: CsmsConfig, options: ServeOptions) -> bool:
    """Serve until SIGINT or SIGTERM (or, in a worker, until stdin closes); True when a signal
    stopped it, so the command exits as `fleetsim run` does on Ctrl-C.

    Prints the `embedded CSMS on ...` line once listening, a status line every
    `options.status_interval_s`, and `stopped` at the end; a worker prints the same as JSON
    lines.  Raises `CannotListen` when the address cannot be listened on.
    """
    raise_open_file_limit()
    failure, signalled = trio.run(_serve, config, options)
    if failure is not None:
        raise CannotListen(_listen_error(options.host, options.port, failure))
    return signalled


async def _serve(config: CsmsConfig, options: ServeOptions) -> tuple[OSError | None, bool]:
    """Serve; the error that kept it from listening, and whether a stop signal ended it."""
    csms = Csms(config)
    if options.tls is not None:
        # One CA: the stations' renewed certificates (A02/A03) are trusted at their next
        # connection, as the ones made at start are.
        csms.certificates.authority = options.tls.authority
    signalled: list[int] = []
    worker = options.process_number is not None
    # The receiver is open before anything is served, so a signal at any moment stops the
    # process cleanly (without it, SIGTERM would kill it and SIGINT raise anywhere).
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                port = await nursery.start(
                    partial(
                        csms.serve,
                        options.host,
                        options.port,
                        reuse_port=options.reuse_port,
                        ssl_context=None if options.tls is None else options.tls.server_context,
                    )
                )
            except OSError as exc:
                nursery.cancel_scope.cancel()
                return exc, False
            # Start-up is over: what lives now (schemas, modules) is frozen out of collections,
            # and young collections run less often.  With 1,000 stations sending back to back
            # this cut the CPU per round trip by a quarter (bench/csms_capacity.py).
            tune_collector()
            if worker or options.until_stdin_closes:
                nursery.start_soon(_cancel_when_parent_is_gone, nursery.cancel_scope)
            if worker:
                _write_event("listening", port=port, pid=os.getpid())
            else:
                scheme = "ws" if options.tls is None else "wss"
                tls_note = (
                    ""
                    if options.tls is None
                    else f"; security profile {options.tls.profile}, CA in {options.tls.ca_file}"
                    + (
                        f", station certificates in {options.tls.stations_dir}"
                        if options.tls.stations_dir is not None
                        else ""
                    )
                )
                _say(
                    f"embedded CSMS on {scheme}://{options.host}:{port}/ocpp (stations connect "
                    f"to {scheme}://{options.host}:{port}/ocpp/<station id>{tls_note}); Ctrl-C "
                    "stops it"
                )
            nursery.start_soon(_report_status, csms, worker, options.status_interval_s)
            nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope, signalled)
    if worker:
        _write_event("stopped", **_counters(csms.statistics()))
    else:
        _say("stopped")
    return None, bool(signalled)


async def _report_status(csms: Csms, worker: bool, interval_s: float) -> None:
    while True:
        await trio.sleep(interval_s)
        stats = csms.statistics()
        if worker:
            _write_event("status", **_counters(stats))
        else:
            _say(
                f"stations connected {stats.stations_connected}, known "
                f"{stats.stations_known}, messages received {stats.messages_received}"
            )


async def _cancel_on_signal(
    signals: AsyncIterator[int], scope: trio.CancelScope, caught: list[int]
) -> None:
    async for signum in signals:
        caught.append(signum)
        scope.cancel()
        return


async def _cancel_when_parent_is_gone(scope: trio.CancelScope) -> None:
    """A worker's stdin is a pipe from its supervisor (with `until_stdin_closes`, from the
    process that started this one): end of file means that process is gone (killed,
    perhaps), and a CSMS nobody supervises must not keep the port."""
    await wait_parent_gone()
    scope.cancel()


def _counters(stats: CsmsStatistics) -> dict[str, int]:
    return {name: int(getattr(stats, name)) for name in _COUNTERS}


def _write_event(event: str, **fields: int) -> None:
    _say(json.dumps({"event": event, **fields}))


def _say(line: str, *, err: bool = False) -> None:
    """Print one line at once: stdout is a pipe when a script or a supervisor reads it, and a
    pipe is block-buffered, so without the flush the first line would come much later."""
    stream = sys.stderr if err else sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
    except BrokenPipeError:
        # The reader (a supervisor or a `--workers` parent) is gone; the CSMS stops anyway.
        discard_output(stream)


def _listen_error(host: str, port: int, exc: OSError) -> str:
    where = f"{host}:{port}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: another program already listens there; choose "
            "another --port, or --port 0 for a free one"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where}: {host} is not an address of this machine; use "
            "--host 127.0.0.1 for loopback or 0.0.0.0 for every interface"
        )
    return f"cannot listen on {where}: {reason}; check --host and --port"


# -- several processes ---------------------------------------------------------------------


@dataclass(eq=False)
class _Process:
    """One worker process, as the supervisor sees it."""

    number: int
    process: trio.Process
    listening: trio.Event = field(default_factory=trio.Event)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    #: Its last report came at its orderly end.
    stopped: bool = False

    @property
    def name(self) -> str:
        return f"CSMS process {self.number} (pid {self.process.pid})"


@dataclass(eq=False)
class _Supervisor:
    host: str
    port: int
    count: int
    status_interval_s: float
    processes: list[_Process] = field(default_factory=list)
    #: Cancelled to end the serving phase: by a signal, or by a process that died.
    serving: trio.CancelScope = field(default_factory=trio.CancelScope)
    stop_signal: int = signal.SIGTERM
    #: A SIGINT or SIGTERM ended serving (not a process that died, nor stdin closing).
    signalled: bool = False
    stopping: bool = False
    failure: CsmsProcessFailed | None = None


def process_command(
    number: int,
    port: int,
    *,
    host: str,
    status_interval_s: float,
    scenario_path: Path | None = None,
    heartbeat_interval_s: int | None = None,
) -> list[str]:
    """The command line of process `number` of `fleetsim csms --processes`, on `port`.

    No password: it would be readable by every user of the machine on a command line, so
    `run_processes` hands it over in the environment.
    """
    command = python_command("csms", "--host", host)
    command += ["--port", str(port), "--processes", "1", "--reuse-port"]
    command += ["--status-interval", str(status_interval_s)]
    command += ["--process-number", str(number)]
    if scenario_path is not None:
        command += ["--scenario", str(scenario_path.resolve())]
    if heartbeat_interval_s is not None:
        command += ["--heartbeat-interval", str(heartbeat_interval_s)]
    return command


def embedded_csms_command(scenario_path: Path, processes: int) -> list[str]:
    """`fleetsim csms` as the embedded CSMS of a `fleetsim run --workers` parent: on a free
    loopback port, answering as the scenario says, in `processes` processes, and stopping
    when its stdin, a pipe from that parent, closes."""
    return python_command(
        "csms",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--scenario",
        str(scenario_path),
        "--processes",
        str(processes),
        "--until-stdin-closes",
    )


def run_processes(
    worker_command: WorkerCommand,
    *,
    host: str,
    port: int,
    processes: int,
    status_interval_s: float = 10.0,
    password: str | None = None,
    until_stdin_closes: bool = False,
) -> bool:
    """Run `processes` CSMS processes on `host:port` until SIGINT or SIGTERM (or, with
    `until_stdin_closes`, until stdin closes); see the module docstring.  True when a signal
    stopped them.
    `worker_command(number, port)` is the command line of one process, which must listen with
    SO_REUSEPORT and speak the worker protocol of `serve_in_this_process`; `password` reaches
    the processes as FLEETSIM_CSMS_PASSWORD in their environment.

    Raises `CannotListen` when the port cannot be reserved, and `CsmsProcessFailed` when a
    process ended on its own (the others are stopped first).
    """
    # The password reaches the processes through the environment, not their command line,
    # where every user of the machine could read it.
    env = dict(os.environ)
    if password is not None:
        env["FLEETSIM_CSMS_PASSWORD"] = password
    reserved, bound_port = _reserve_port(host, port)
    try:
        supervisor = _Supervisor(host, bound_port, processes, status_interval_s)
        trio.run(_supervise, supervisor, worker_command, env, reserved, until_stdin_closes)
    finally:
        for sock in reserved:
            sock.close()
    if supervisor.failure is not None:
        raise supervisor.failure
    return supervisor.signalled


def _reserve_port(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Bind (without listening) every address of `host` with SO_REUSEPORT, on `port` or, for
    port 0, on the free port the first address gets.  Not listening, these sockets get no
    connections, but no program without SO_REUSEPORT can take the port while they are open."""
    if getattr(socket, "SO_REUSEPORT", None) is None:
        raise CannotListen(
            "this platform has no SO_REUSEPORT, so several processes cannot share a port; "
            "run with --processes 1"
        )
    try:
        sockets = bind_reuse_port(host, port)
    except OSError as exc:
        raise CannotListen(_listen_error(host, port, exc)) from exc
    return sockets, int(sockets[0].getsockname()[1])


async def _supervise(
    supervisor: _Supervisor,
    worker_command: WorkerCommand,
    env: dict[str, str],
    reserved: list[socket.socket],
    until_stdin_closes: bool,
) -> None:
    async with trio.open_nursery() as services:
        services.start_soon(_forward_signals, supervisor)
        if until_stdin_closes:
            services.start_soon(_stop_when_parent_is_gone, supervisor)
        try:
            async with trio.open_nursery() as watchers:
                for number in range(supervisor.count):
                    process = await trio.lowlevel.open_process(
                        list(worker_command(number, supervisor.port)),
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=env,
                        start_new_session=True,
                    )
                    child = _Process(number, process)
                    supervisor.processes.append(child)
                    watchers.start_soon(_read_reports, child)
                    watchers.start_soon(_watch_exit, supervisor, child)
                with supervisor.serving:
                    await _wait_listening(supervisor)
                    for sock in reserved:
                        sock.close()
                    _announce(supervisor)
                    while True:
                        await trio.sleep(supervisor.status_interval_s)
                        _say(_status_line(supervisor.processes))
                supervisor.stopping = True
                await stop_children(
                    [child.process for child in supervisor.processes],
                    supervisor.stop_signal,
                    STOP_GRACE_S,
                )
        finally:
            # Whatever ended the supervisor, no process may outlive it.
            for child in supervisor.processes:
                if child.process.returncode is None:
                    child.process.kill()
        services.cancel_scope.cancel()
    for child in supervisor.processes:
        _say(_final_line(child))
    if supervisor.failure is None:
        _say("stopped")


async def _wait_listening(supervisor: _Supervisor) -> None:
    with trio.move_on_after(STARTUP_TIMEOUT_S):
        for child in supervisor.processes:
            await child.listening.wait()
        return
    late = ", ".join(c.name for c in supervisor.processes if not c.listening.is_set())
    supervisor.failure = CsmsProcessFailed(
        f"{late} did not start listening within {STARTUP_TIMEOUT_S:g} s; the machine may be "
        "overloaded, or the process may be stuck (its output above may say why); try again, "
        "or with fewer --processes",
        exit_code=None,
        while_starting=True,
    )
    supervisor.serving.cancel()


def _announce(supervisor: _Supervisor) -> None:
    host, port = supervisor.host, supervisor.port
    _say(
        f"embedded CSMS on ws://{host}:{port}/ocpp (stations connect to "
        f"ws://{host}:{port}/ocpp/<station id>); Ctrl-C stops it"
    )
    pids = ", ".join(f"process {c.number} pid {c.process.pid}" for c in supervisor.processes)
    _say(
        f"{supervisor.count} processes share the port with SO_REUSEPORT ({pids}); each "
        "station's state lives in the process its connection went to"
    )


def _status_line(processes: Sequence[_Process]) -> str:
    total = {name: sum(c.counters[name] for c in processes) for name in _COUNTERS}
    per_process = ", ".join(str(c.counters["connections_accepted"]) for c in processes)
    return (
        f"stations connected {total['stations_connected']}, known {total['stations_known']}, "
        f"messages received {total['messages_received']} (totals over {len(processes)} "
        f"processes; connections accepted per process: {per_process})"
    )


def _final_line(child: _Process) -> str:
    counters = child.counters
    tally = (
        f"accepted {counters['connections_accepted']} connections and received "
        f"{counters['messages_received']} messages"
    )
    if child.stopped:
        return f"process {child.number} (pid {child.process.pid}) {tally}"
    returncode = child.process.returncode
    how = _describe_exit(returncode) if returncode is not None else "did not report"
    return f"process {child.number} (pid {child.process.pid}) {how}; it had {tally}"


async def _read_reports(child: _Process) -> None:
    """Take in a worker's JSON lines; pass anything else it prints on, marked as its own."""
    stdout = child.process.stdout
    assert stdout is not None
    async for raw in lines(stdout):
        line = raw.decode(errors="replace")
        try:
            report = json.loads(line)
        except ValueError:
            report = None
        if not isinstance(report, dict) or "event" not in report:
            _say(f"process {child.number}: {line}")
            continue
        event = report["event"]
        if event == "listening":
            child.listening.set()
        elif event in ("status", "stopped"):
            child.counters = {name: int(report.get(name, 0)) for name in _COUNTERS}
            child.stopped = event == "stopped"


async def _watch_exit(supervisor: _Supervisor, child: _Process) -> None:
    returncode = await child.process.wait()
    if supervisor.stopping or supervisor.failure is not None:
        return
    starting = not child.listening.is_set()
    when = " before it was listening" if starting else ""
    consequence = (
        "so the others were stopped"
        if starting
        else (
            "the stations it served lost their connections and the CSMS lost part of its "
            "capacity, so the others were stopped too rather than distort a load test"
        )
    )
    supervisor.failure = CsmsProcessFailed(
        f"{child.name} {_describe_exit(returncode)}{when}; {consequence}.  Its own output above "
        "says why, if it printed anything; start the CSMS again once that is fixed",
        exit_code=returncode,
        while_starting=starting,
    )
    supervisor.serving.cancel()


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"was killed by signal {name}"
    return f"exited with code {returncode}"


async def _stop_when_parent_is_gone(supervisor: _Supervisor) -> None:
    """End serving as SIGTERM would: the parent that started this supervisor is gone."""
    await wait_parent_gone()
    if not supervisor.stopping:
        supervisor.serving.cancel()


async def _forward_signals(supervisor: _Supervisor) -> None:
    """First SIGINT/SIGTERM: end serving, and `_stop` passes the signal on.  Second: kill."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if not supervisor.stopping and not supervisor.serving.cancel_called:
                supervisor.stop_signal = signum
                supervisor.signalled = True
                supervisor.serving.cancel()
                continue
            for child in supervisor.processes:
                if child.process.returncode is None:
                    child.process.kill()
