"""The engine as the `fleetsim` command line uses it, in a few calls.

`cli/` parses flags, renders and picks exit codes; for everything else it calls this module:
load and check a scenario (`load_scenario`, `scenario_json_schema`), plan and run a fleet in
one process or over worker processes (`plan_run`, `run_fleet`, within
`stop_signals_caught`), serve the embedded CSMS in one process or several (`serve_csms`), and
list the EV models (`ev_model_catalogue`).  How a fleet is cut into workers and how child
processes are started stays with the modules that do it (`workers.py`, `csms/processes.py`);
this module only puts a request together with them.

Importing it stays light (the scenario model, nothing more), because `fleetsim --help` and
`fleetsim validate` import it: trio, the engine and the CSMS load inside the calls that need
them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .scenario import Scenario, ScenarioError, scenario_json_schema
from .scenario import load_scenario as _load_scenario_file
from .scenario.faults import FAULT_FLAGS
from .thresholds import Threshold, ThresholdSyntaxError, parse_threshold

if TYPE_CHECKING:
    from rich.console import Console

    from fleetsim.ev_models import EvModel

    from .csms.policy import CsmsConfig
    from .csms.server import CsmsTls
    from .run import RunOutcome
    from .shard import Shard

__all__ = [
    "FAULT_FLAGS",
    "CsmsOutcome",
    "CsmsRequest",
    "RunPlan",
    "RunOutcome",
    "RunRefused",
    "RunRequest",
    "Scenario",
    "ScenarioError",
    "ScenarioOverrides",
    "Threshold",
    "command_line_thresholds",
    "ev_model_catalogue",
    "load_scenario",
    "plan_run",
    "run_fleet",
    "scenario_json_schema",
    "serve_csms",
    "stop_signals_caught",
]


class RunRefused(Exception):
    """A run cannot start as asked (a flag's value, or more than the machine holds); the
    message says what to change.  Nothing was started."""


# -- scenarios -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScenarioOverrides:
    """Scenario values given on the command line; None where the scenario's own value holds."""

    stations: int | None = None
    duration_s: float | None = None
    speed: float | None = None
    seed: int | None = None
    ocpp_version: str | None = None
    csms_url: str | None = None
    metrics_port: int | None = None
    #: `now`, or a simulated start with a time zone (2026-01-15T06:00:00Z).
    start: str | None = None
    #: Faults from the flags that add them, as (flag, value): ("partition", "20%@08:00+10m");
    #: see `scenario.faults.FAULT_FLAGS`.
    fault_flags: tuple[tuple[str, str], ...] = ()
    #: csms.security: the OCPP security profile (1, 2, 3), the CA file, the client certificate.
    security_profile: int | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    #: csms.password_env: the environment variable that holds the password.
    password_env: str | None = None


def load_scenario(path: Path, overrides: ScenarioOverrides | None = None) -> Scenario:
    """The scenario in the file at `path`, with `overrides` applied and checked again.

    Raises `ScenarioError`, whose message has one `file:line field: message` line per problem.
    """
    scenario = _load_scenario_file(path)
    if overrides is None:
        return scenario
    return scenario.with_overrides(**dataclasses.asdict(overrides))


def ev_model_catalogue() -> dict[str, EvModel]:
    """The EV models of the catalogue (ev_models/data/catalogue.yaml), by name."""
    from fleetsim.ev_models import load_catalogue

    return load_catalogue()


# -- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """A `fleetsim run` as asked: the scenario file, what overrides it, and how to run it."""

    scenario_path: Path
    overrides: ScenarioOverrides = field(default_factory=ScenarioOverrides)
    #: `I/N`: run shard I of N of the fleet.
    shard: str | None = None
    #: Worker processes to split the fleet over: a number, or `auto`.
    workers: str = "1"
    #: `w/N`: this process is worker w of N of a `workers` parent, reporting on stdout.
    worker: str | None = None
    #: Local addresses the stations connect from: comma-separated, or ranges.
    source_addresses: str | None = None
    #: Run over in-memory links on a simulated clock against the embedded CSMS (`--fast`).
    in_memory: bool = False
    trace_path: Path | None = None
    summary_json_path: Path | None = None
    report_dir: Path | None = None
    show_progress: bool = True
    #: Threshold expressions from the command line (`--threshold`), besides the scenario's.
    thresholds: tuple[str, ...] = ()
    #: Write the thresholds and the failures the run saw as JUnit XML here.
    junit_path: Path | None = None


@dataclass(frozen=True)
class RunPlan:
    """A run that passed every check, for `run_fleet`."""

    request: RunRequest
    #: What this process runs: the scenario with its overrides, cut to the shard and worker.
    scenario: Scenario
    shard: Shard | None
    #: Set when this process is a worker of a `--workers` parent.
    worker: Shard | None
    #: Worker processes this process starts (1: it runs the stations itself).
    worker_count: int
    source_addresses: tuple[str, ...]
    #: The scenario's thresholds, then the command line's; none in a worker, whose parent
    #: judges the whole fleet.
    thresholds: tuple[Threshold, ...] = ()
    #: Settings the run will ignore, each as a sentence that says why and what to do.
    warnings: tuple[str, ...] = ()


@contextlib.contextmanager
def stop_signals_caught(request: RunRequest) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop the run whenever they come, even while the
    engine still loads, instead of killing the process (stop_signals.py).  Enter it first,
    before `plan_run`; a worker tells its parent here that it is ready for signals."""
    from . import stop_signals

    report_to = sys.stdout.buffer if request.worker is not None else None
    with stop_signals.caught(report_to=report_to):
        yield


def plan_run(request: RunRequest) -> RunPlan:
    """Load the scenario with its overrides, and check the flags and the machine's limits.

    Raises `ScenarioError` for the scenario (or a missing password variable, or a
    `--threshold` that does not parse) and `RunRefused` for the rest, before anything starts.
    """
    from .limits import PreflightError, check_fleet_fits
    from .shard import parse_shard
    from .transport import check_source_addresses, parse_source_addresses
    from .workers import plan_workers, worker_scenario

    written = _load_scenario_file(request.scenario_path)
    scenario = written.with_overrides(**dataclasses.asdict(request.overrides))
    thresholds: tuple[Threshold, ...] = ()
    if request.worker is None:
        thresholds = scenario.parsed_thresholds() + command_line_thresholds(request.thresholds)
    shard = None
    worker = None
    worker_count = 1
    sources: tuple[str, ...] = ()
    fleet_stations = scenario.stations.count
    try:
        if request.source_addresses is not None:
            sources = parse_source_addresses(request.source_addresses)
            if not request.in_memory:
                # Here, not as one failed connection per station that seems to blame the CSMS.
                check_source_addresses(sources)
        if request.shard is not None:
            shard = parse_shard(request.shard)
            stations = scenario.stations
            scenario = scenario.for_block(shard.block(stations.first_index, stations.count))
        if request.worker is not None:
            worker = parse_shard(request.worker)
            scenario = worker_scenario(scenario, worker)
        elif request.workers != "1":
            if request.in_memory:
                raise ValueError("--fast runs in one process; drop --workers")
            worker_count = plan_workers(request.workers, scenario.stations.count)
            if worker_count > 1 and scenario.csms.url is None:
                profile = scenario.csms.security_profile
                if profile >= 2 and not request.in_memory:
                    raise ValueError(
                        f"the embedded CSMS serves security profile {profile} (TLS) in the "
                        "run's own process only; run with --workers 1, or start "
                        f"`fleetsim csms --security-profile {profile}` and point --csms at it"
                    )
        scenario.resolved_password()
        if scenario.csms.url is not None and (missing := scenario.csms.security.missing_files()):
            raise ScenarioError(missing)
        # Every limit at once, with one remedy for them all (limits.py); --fast has no
        # sockets, but its stations need memory all the same.
        check_fleet_fits(
            scenario.stations.count,
            embedded_csms=request.in_memory or scenario.csms.url is None,
            source_addresses=max(1, len(sources)),
            processes=worker_count,
            shards=shard.count if shard is not None else 1,
            fleet_stations=fleet_stations,
            in_memory=request.in_memory,
        )
    except ScenarioError:
        raise
    except (PreflightError, ValueError) as exc:
        raise RunRefused(str(exc)) from exc
    # A worker's parent has said it already, to the person who started the run.
    warnings = (
        ()
        if worker is not None
        else _real_time_note(written, scenario)
        + _ignored_settings(scenario, request.in_memory, worker_count)
    )
    return RunPlan(
        request,
        scenario,
        shard,
        worker,
        worker_count,
        sources,
        thresholds=thresholds,
        warnings=warnings,
    )


def _real_time_note(written: Scenario, scenario: Scenario) -> tuple[str, ...]:
    """The sentence that says a scenario written for the embedded CSMS runs in real time
    because `--csms` pointed it elsewhere, when that changed its speed or start."""
    if written.csms.url is not None or scenario.csms.url is None:
        return ()
    changed = []
    keep = []
    if scenario.speed != written.speed:
        changed.append(f"speed {scenario.speed:g} instead of {written.speed:g}")
        keep.append(f"--speed {written.speed:g}")
    if written.start is not None and scenario.start != written.start:
        changed.append(f"starting now instead of at {written.start.isoformat()}")
        keep.append(f"--start {written.start.isoformat()}")
    if not changed:
        return ()
    return (
        f"--csms points a scenario written for the embedded CSMS at {scenario.csms.url}, so it "
        f"runs in real time ({', '.join(changed)}) and its timestamps and heartbeats match that "
        f"CSMS's clock; give {' or '.join(keep)} to keep the scenario's",
    )


def _ignored_settings(scenario: Scenario, in_memory: bool, worker_count: int) -> tuple[str, ...]:
    """What the scenario asks for that this run cannot do, said before it starts.

    Drivers reserve through the embedded CSMS of the run's own process (csms/reservations.py):
    a CSMS elsewhere cannot be made to send ReserveNow; the same holds for a firmware rollout."""
    if in_memory:
        profile = scenario.csms.security_profile
        if profile > 1:
            return (
                f"security profile {profile} is not applied: --fast runs over in-memory links, "
                "with no TLS and no handshake; drop --fast to run it over wss://",
            )
        return ()
    found: list[str] = []
    if scenario.embedded_csms.firmware_rollout is not None:
        if scenario.csms.url is not None:
            found.append(
                "embedded_csms.firmware_rollout is ignored: this run's stations connect to "
                f"{scenario.csms.url}; send UpdateFirmware from that CSMS, or run without "
                "csms.url (or with --fast) for the embedded CSMS's rollout"
            )
        elif worker_count > 1:
            found.append(
                "embedded_csms.firmware_rollout is ignored: with --workers the embedded CSMS "
                "runs in processes of its own; run with --workers 1 (or --fast) for the rollout"
            )
    if scenario.embedded_csms.reserve_share == 0:
        return tuple(found)
    if scenario.csms.url is not None:
        found.append(
            "embedded_csms.reserve_share is ignored: drivers reserve through the embedded CSMS, "
            f"and this run's stations connect to {scenario.csms.url}, which fleetsim cannot make "
            "send ReserveNow; run without csms.url (or with --fast) for reservations"
        )
    elif worker_count > 1:
        found.append(
            "embedded_csms.reserve_share is ignored: with --workers the embedded CSMS runs in "
            "processes of its own, which the drivers cannot reach; run with --workers 1 (or "
            "--fast) for reservations"
        )
    return tuple(found)


def command_line_thresholds(expressions: tuple[str, ...]) -> tuple[Threshold, ...]:
    """The `--threshold` expressions, parsed; raises `ScenarioError` with every one that does
    not parse, each pointing at the character at fault."""
    thresholds = []
    problems = []
    for expression in expressions:
        try:
            thresholds.append(parse_threshold(expression, source="command line"))
        except ThresholdSyntaxError as exc:
            problems.append(f"command line: --threshold {expression!r}: {exc.explain()}")
    if problems:
        raise ScenarioError(problems)
    return tuple(thresholds)


def run_fleet(plan: RunPlan, console: Console) -> RunOutcome:
    """Run the plan to the end of its duration or until a stop signal, in this process or
    over worker processes, and return how it ended; the summary goes to `console`."""
    import trio

    if plan.worker_count > 1:
        return _run_over_workers(plan, console)
    from trio.testing import MockClock

    from .run import RunOptions, run_scenario

    request = plan.request
    is_worker = plan.worker is not None
    options = RunOptions(
        trace_path=request.trace_path,
        summary_json_path=request.summary_json_path,
        show_progress=request.show_progress and not is_worker,
        in_memory=request.in_memory,
        report_dir=request.report_dir,
        shard=plan.shard,
        source_addresses=plan.source_addresses,
        worker_index=None if plan.worker is None else plan.worker.index,
        report_to=sys.stdout.buffer if is_worker else None,
        stop_when_stdin_closes=is_worker,
        thresholds=plan.thresholds,
        junit_path=request.junit_path,
    )
    if request.in_memory:
        # Simulated time only: the clock jumps to the next deadline whenever every task waits.
        clock = MockClock(autojump_threshold=0)
        return trio.run(run_scenario, plan.scenario, options, console, clock=clock)
    return trio.run(run_scenario, plan.scenario, options, console)


def _run_over_workers(plan: RunPlan, console: Console) -> RunOutcome:
    import trio

    from .csms.processes import embedded_csms_command
    from .workers import WorkersRun, worker_command

    request = plan.request
    overrides = request.overrides
    scenario = plan.scenario
    passed_on = _flags(
        stations=overrides.stations,
        duration=overrides.duration_s,
        # Resolved here: a worker gets `--csms` even for the embedded CSMS, which alone would
        # make it run in real time (Scenario.with_overrides).
        speed=scenario.speed,
        start="now" if scenario.start is None else scenario.start.isoformat(),
        seed=overrides.seed,
        ocpp_version=overrides.ocpp_version,
        shard=request.shard,
        source_address=request.source_addresses,
        security_profile=overrides.security_profile,
        ca_file=overrides.ca_file,
        client_cert=overrides.client_cert,
        client_key=overrides.client_key,
        password_env=overrides.password_env,
    )
    for flag, value in overrides.fault_flags:
        passed_on += [f"--{flag.replace('_', '-')}", value]

    def command_of_worker(index: int, csms_url: str) -> list[str]:
        return worker_command(
            request.scenario_path,
            passed_on,
            index=index,
            count=plan.worker_count,
            csms_url=csms_url,
            trace_path=request.trace_path,
            report_dir=request.report_dir,
        )

    parent = WorkersRun(
        plan.scenario,
        workers=plan.worker_count,
        worker_command=command_of_worker,
        csms_command=partial(embedded_csms_command, request.scenario_path),
        console=console,
        show_progress=request.show_progress,
        summary_json_path=request.summary_json_path,
        shard=plan.shard,
        thresholds=plan.thresholds,
        junit_path=request.junit_path,
    )
    return trio.run(parent.run)


def _flags(**values: Any) -> list[str]:
    """`--name value` for each value that was given, as a worker gets its parent's flags."""
    arguments = []
    for name, value in values.items():
        if value is not None:
            arguments += [f"--{name.replace('_', '-')}", str(value)]
    return arguments


# -- the CSMS ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CsmsRequest:
    """A `fleetsim csms` as asked."""

    host: str = "127.0.0.1"
    port: int = 9000
    #: Answer as this scenario's embedded CSMS; the values below override it.
    scenario_path: Path | None = None
    heartbeat_interval_s: int | None = None
    password: str | None = None
    #: Processes sharing the port with SO_REUSEPORT.
    processes: int = 1
    reuse_port: bool = False
    status_interval_s: float = 10.0
    #: Set in process N of a `processes` supervisor.
    process_number: int | None = None
    #: Stop when stdin closes: the process that started this CSMS is gone.
    until_stdin_closes: bool = False
    #: Serve wss:// (2: TLS, 3: TLS with client certificates) with certificates made at start.
    security_profile: int = 1
    #: Where the CA certificate (ca.pem) goes; None: a temporary directory.
    tls_dir: Path | None = None
    #: Profile 3: also accept station certificates of this CA.
    client_ca_file: Path | None = None


@dataclass(frozen=True)
class CsmsOutcome:
    """How `serve_csms` ended: stopped by a signal when `error` is None."""

    #: What went wrong, as a sentence for its user.
    error: str | None = None
    #: The host, the port or another argument was unusable, so nothing was served.
    bad_arguments: bool = False
    #: SIGINT or SIGTERM stopped it (Ctrl-C), which exits 130 as `fleetsim run` does.
    interrupted: bool = False


def serve_csms(request: CsmsRequest) -> CsmsOutcome:
    """Serve as the request says until SIGINT or SIGTERM (or, asked so, until stdin closes).

    Raises `ScenarioError` for the scenario file (or a missing password variable); every other
    way it can end comes back as a `CsmsOutcome`.
    """
    import tempfile

    from .csms.processes import standalone_csms_config
    from .csms.server import CsmsTls

    scenario_path = request.scenario_path
    scenario = _load_scenario_file(scenario_path) if scenario_path is not None else None
    config = standalone_csms_config(
        scenario, heartbeat_interval_s=request.heartbeat_interval_s, password=request.password
    )
    if request.security_profile not in (1, 2, 3):
        return CsmsOutcome(
            f"--security-profile {request.security_profile} is not an OCPP security profile; "
            "give 1, 2 or 3",
            bad_arguments=True,
        )
    if request.security_profile == 3:
        if request.password is not None:
            return CsmsOutcome(
                "--password is for security profiles 1 and 2; under profile 3 a station's "
                "client certificate says who it is: drop --password or use --security-profile 2",
                bad_arguments=True,
            )
        config = dataclasses.replace(config, basic_auth_passwords=None)
    tls = None
    with contextlib.ExitStack() as cleanup:
        if request.security_profile >= 2:
            if request.processes != 1:
                return CsmsOutcome(
                    "--security-profile 2 and 3 are served by one process; drop --processes",
                    bad_arguments=True,
                )
            directory = request.tls_dir
            if directory is None:
                directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
            try:
                tls = CsmsTls.create(
                    request.security_profile,
                    directory,
                    _tls_hosts(request.host),
                    client_ca_file=request.client_ca_file,
                )
                if scenario is not None and tls.profile == 3:
                    stations = scenario.stations
                    tls.write_station_certificates(
                        directory / "stations",
                        (stations.station_id(index) for index in stations.station_indices),
                    )
            except (OSError, ValueError) as exc:
                return CsmsOutcome(f"cannot set up TLS: {exc}", bad_arguments=True)
        return _serve_csms(request, config, tls, scenario_path)


def _tls_hosts(host: str) -> tuple[str, ...]:
    """The names the embedded CSMS's server certificate is issued for."""
    hosts = [host] if host not in ("0.0.0.0", "::", "") else []
    for loopback in ("127.0.0.1", "localhost"):
        if loopback not in hosts:
            hosts.append(loopback)
    return tuple(hosts)


def _serve_csms(
    request: CsmsRequest, config: CsmsConfig, tls: CsmsTls | None, scenario_path: Path | None
) -> CsmsOutcome:
    from .csms.processes import (
        CannotListen,
        CsmsProcessFailed,
        ServeOptions,
        process_command,
        run_processes,
        serve_in_this_process,
    )

    try:
        if request.processes == 1:
            options = ServeOptions(
                request.host,
                request.port,
                request.reuse_port,
                request.status_interval_s,
                request.process_number,
                request.until_stdin_closes,
                tls,
            )
            interrupted = serve_in_this_process(config, options)
        else:
            interrupted = run_processes(
                partial(
                    process_command,
                    host=request.host,
                    status_interval_s=request.status_interval_s,
                    scenario_path=scenario_path,
                    heartbeat_interval_s=request.heartbeat_interval_s,
                ),
                host=request.host,
                port=request.port,
                processes=request.processes,
                status_interval_s=request.status_interval_s,
                password=request.password,
                until_stdin_closes=request.until_stdin_closes,
            )
    except CannotListen as exc:
        return CsmsOutcome(str(exc), bad_arguments=True)
    except CsmsProcessFailed as exc:
        return CsmsOutcome(str(exc), bad_arguments=exc.bad_arguments)
    return CsmsOutcome(interrupted=interrupted)
