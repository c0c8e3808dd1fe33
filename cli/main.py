"""The typer application behind the `fleetsim` console script.

Commands stay thin: they turn arguments into a call on `simulator`, print the outcome and map it
to an `ExitCode`.  Scenario problems go to stderr, one line per problem, in the
`file:line field: message` form that editors and CI logs turn into links.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from simulator.scenario import Scenario, ScenarioError, load_scenario, scenario_json_schema

if TYPE_CHECKING:
    from rich.console import Console

    from simulator.shard import Shard

from .exit_codes import ExitCode

__all__ = ["app", "main"]

app = typer.Typer(
    name="fleetsim",
    help="A fleet of simulated OCPP 2.1 charging stations, to load-test a CSMS.",
    no_args_is_help=True,
    # A traceback with locals would print the scenario, password included.
    pretty_exceptions_show_locals=False,
)


def main() -> None:
    """Entry point of the `fleetsim` console script."""
    app()


def _describe(scenario: Scenario) -> str:
    """One line on what a scenario runs, for `validate` and for the start of a run."""
    stations = scenario.stations
    evses = len(stations.evses)
    csms = f"CSMS {scenario.csms.url}" if scenario.csms.url else "embedded CSMS"
    duration = f"{scenario.duration_s:g} s" if scenario.duration_s is not None else "until Ctrl-C"
    return (
        f"{stations.count} stations with {evses} EVSE{'s' if evses != 1 else ''} each, {csms}, "
        f"OCPP {scenario.ocpp_version}, speed {scenario.speed:g}, {duration}"
    )


@app.command()
def validate(
    scenarios: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario YAML files to check.", metavar="SCENARIO", show_default=False
        ),
    ],
) -> None:
    """Check scenario files without running them.

    Every file is checked, so one pass shows every problem; exits with 2 if any is invalid.
    """
    all_valid = True
    for path in scenarios:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            typer.echo(str(exc), err=True)
            all_valid = False
            continue
        typer.echo(f"ok: {path} ({_describe(scenario)})")
    if not all_valid:
        raise typer.Exit(code=ExitCode.BAD_SCENARIO)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files, for editor completion and checks.

    Save it with `fleetsim schema > scenario.schema.json` and point your editor's YAML plugin at it.
    """
    typer.echo(json.dumps(scenario_json_schema(), indent=2))


def _load(path: Path, **overrides: object) -> Scenario:
    """The scenario at `path` with the flags that were given, or exit 2 saying what is wrong."""
    try:
        return load_scenario(path).with_overrides(**overrides)  # type: ignore[arg-type]
    except ScenarioError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=ExitCode.BAD_SCENARIO) from None


@app.command()
def run(
    scenario_path: Annotated[
        Path, typer.Argument(help="Scenario YAML file.", metavar="SCENARIO", show_default=False)
    ],
    csms: Annotated[
        str | None,
        typer.Option(help="CSMS WebSocket URL (ws:// or wss://); stations append /<station id>."),
    ] = None,
    stations: Annotated[int | None, typer.Option(help="Number of stations.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Wall seconds the run lasts.", metavar="SECONDS")
    ] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per wall second.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the scenario's randomness.")] = None,
    ocpp_version: Annotated[
        str | None, typer.Option("--ocpp-version", help="2.1 or 2.0.1.")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics on this port; 0 picks a free one."),
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="Write the run summary as JSON to this file.")
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option(help="Write every frame of every station as JSON lines to this file."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the live progress line.")] = True,
    fast: Annotated[
        bool,
        typer.Option(
            help=(
                "Run against the embedded CSMS over in-memory links on a simulated clock, as fast "
                "as the CPU allows: same stations, models and outputs, no sockets."
            )
        ),
    ] = False,
    report_dir: Annotated[
        Path | None,
        typer.Option(help="Write sessions.csv, site_power.csv and load_curve.png here."),
    ] = None,
    source_address: Annotated[
        str | None,
        typer.Option(
            help=(
                "Local addresses the stations connect from, comma-separated or as ranges "
                "(127.0.0.2-127.0.0.9): one address has about 28,000 ports towards one CSMS."
            ),
            metavar="ADDRESSES",
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help=(
                "Run shard I of N (0-based, I/N): a disjoint block of the stations, so N "
                "processes or machines run one fleet."
            ),
            metavar="I/N",
        ),
    ] = None,
    workers: Annotated[
        str,
        typer.Option(
            help=(
                "Worker processes the stations are split over, or auto: one per core for large "
                "fleets, and enough for every socket to fit a process's open-file limit."
            ),
            metavar="N|auto",
        ),
    ] = "1",
    worker: Annotated[
        str | None,
        typer.Option(hidden=True, help="Run as worker w of N of a --workers parent."),
    ] = None,
) -> None:
    """Run a fleet of stations against a CSMS (the embedded one when none is given)."""
    import trio
    from rich.console import Console
    from trio.testing import MockClock

    from simulator.limits import PreflightError, check_fleet_fits
    from simulator.run import RunOptions, run_scenario
    from simulator.shard import parse_shard
    from simulator.transport import parse_source_addresses
    from simulator.workers import plan_workers

    scenario = _load(
        scenario_path,
        stations=stations,
        duration_s=duration,
        speed=speed,
        seed=seed,
        ocpp_version=ocpp_version,
        csms_url=csms,
        metrics_port=metrics_port,
    )
    part = None
    worker_part = None
    worker_count = 1
    sources: tuple[str, ...] = ()
    try:
        if source_address is not None:
            sources = parse_source_addresses(source_address)
        if shard is not None:
            part = parse_shard(shard)
            scenario = scenario.for_block(
                part.block(scenario.stations.first_index, scenario.stations.count)
            )
        if worker is not None:
            worker_part = parse_shard(worker)
            scenario = _worker_part(scenario, worker_part)
        elif workers != "1":
            if fast:
                raise ValueError("--fast runs in one process; drop --workers")
            worker_count = plan_workers(workers, scenario.stations.count)
        scenario.resolved_password()
        if not fast:
            check_fleet_fits(
                scenario.stations.count,
                embedded_csms_sockets=scenario.csms.url is None and worker_count == 1,
                source_addresses=max(1, len(sources)),
                processes=worker_count,
            )
    except (ScenarioError, PreflightError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=ExitCode.BAD_SCENARIO) from None
    if worker_part is not None:
        # A worker's stdout carries its reports to the parent; people read the parent.
        console = Console(stderr=True, quiet=True)
    else:
        # soft_wrap: long lines (errors, URLs) stay whole in CI logs instead of breaking at 80.
        console = Console(highlight=False, soft_wrap=True)
    console.print(f"fleetsim: {scenario.name}: {_describe(scenario)}")
    if worker_count > 1:
        _run_workers(
            scenario,
            scenario_path,
            worker_count,
            console,
            passed_on=_passed_on(
                stations=stations,
                duration=duration,
                speed=speed,
                seed=seed,
                ocpp_version=ocpp_version,
                shard=shard,
                source_address=source_address,
            ),
            trace=trace,
            report_dir=report_dir,
            summary_json=summary_json,
            show_progress=progress,
            shard=part,
        )
    options = RunOptions(
        trace_path=trace,
        summary_json_path=summary_json,
        show_progress=progress and worker_part is None,
        in_memory=fast,
        report_dir=report_dir,
        shard=part,
        source_addresses=sources,
        worker_index=None if worker_part is None else worker_part.index,
        report_to=None if worker_part is None else sys.stdout.buffer,
    )
    if fast:
        if csms is not None:
            typer.echo("--fast runs against the embedded CSMS; drop --csms", err=True)
            raise typer.Exit(code=ExitCode.BAD_SCENARIO)
        # Simulated time only: the clock jumps to the next deadline whenever every task waits.
        outcome = trio.run(
            run_scenario, scenario, options, console, clock=MockClock(autojump_threshold=0)
        )
    else:
        outcome = trio.run(run_scenario, scenario, options, console)
    if outcome.csms_unreachable:
        raise typer.Exit(code=ExitCode.CSMS_UNREACHABLE)
    if outcome.interrupted:
        raise typer.Exit(code=ExitCode.INTERRUPTED)
    raise typer.Exit(code=ExitCode.OK)


def _worker_part(scenario: Scenario, part: Shard) -> Scenario:
    """Worker w of N's part of the (shard's) fleet, ramping up at 1/N of the whole's rate."""
    stations = scenario.stations
    scenario = scenario.for_block(part.block(stations.first_index, stations.count))
    ramp_up_per_s = stations.ramp_up_per_s / part.count
    return scenario.model_copy(
        update={"stations": scenario.stations.model_copy(update={"ramp_up_per_s": ramp_up_per_s})}
    )


def _passed_on(**flags: object) -> list[str]:
    """The flags a worker gets as the parent got them (those that were given)."""
    arguments = []
    for name, value in flags.items():
        if value is not None:
            arguments += [f"--{name.replace('_', '-')}", str(value)]
    return arguments


def _run_workers(
    scenario: Scenario,
    scenario_path: Path,
    worker_count: int,
    console: Console,
    *,
    passed_on: list[str],
    trace: Path | None,
    report_dir: Path | None,
    summary_json: Path | None,
    show_progress: bool,
    shard: Shard | None,
) -> None:
    """Run the fleet over `worker_count` processes (see simulator/workers.py) and exit."""
    import trio

    from simulator.children import python_command
    from simulator.workers import WorkersRun

    def worker_command(index: int, csms_url: str) -> list[str]:
        command = python_command(
            "run", str(scenario_path), *passed_on, "--csms", csms_url, "--no-progress"
        )
        command += ["--worker", f"{index}/{worker_count}"]
        if trace is not None:
            command += ["--trace", str(trace.with_name(f"{trace.stem}.{index}{trace.suffix}"))]
        if report_dir is not None:
            command += ["--report-dir", str(report_dir / f"worker-{index}")]
        return command

    def csms_command(processes: int) -> list[str]:
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
        )

    parent = WorkersRun(
        scenario,
        workers=worker_count,
        worker_command=worker_command,
        csms_command=csms_command,
        console=console,
        show_progress=show_progress,
        summary_json_path=summary_json,
        shard=shard,
    )
    outcome = trio.run(parent.run)
    if outcome.workers_died:
        raise typer.Exit(code=ExitCode.WORKER_DIED)
    if outcome.csms_unreachable:
        raise typer.Exit(code=ExitCode.CSMS_UNREACHABLE)
    if outcome.interrupted:
        raise typer.Exit(code=ExitCode.INTERRUPTED)
    raise typer.Exit(code=ExitCode.OK)


@app.command("ev-models")
def ev_models_command() -> None:
    """List the EV models of the catalogue, with the figures the simulation uses."""
    from rich.console import Console
    from rich.table import Table

    from ev_models import load_catalogue

    table = Table(title="EV models (ev_models/data/catalogue.yaml; sources there)")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    for column in ("battery kWh", "AC kW", "DC kW", "ISO 15118-20", "V2G"):
        table.add_column(column, justify="right")
    for name, model in sorted(load_catalogue().items()):
        table.add_row(
            name,
            model.kind,
            f"{model.usable_battery_wh / 1000:.1f}",
            f"{model.max_ac_w / 1000:.1f}" if model.max_ac_w else "-",
            f"{model.max_dc_w / 1000:.0f}",
            "yes" if model.iso15118_20 else "no",
            f"{model.max_discharge_w / 1000:.1f} kW" if model.bidirectional else "no",
        )
    Console(soft_wrap=True).print(table)


@app.command("csms")
def csms_command(
    port: Annotated[int, typer.Option(help="TCP port to listen on; 0 picks a free one.")] = 9000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    heartbeat_interval: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=(
                "HeartbeatInterval given to stations at boot, in seconds "
                "[default: the scenario's stations.heartbeat_interval_s, else 300]."
            ),
            show_default=False,
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="FLEETSIM_CSMS_PASSWORD",
            help="Require this HTTP Basic password from every station (profile 1).",
        ),
    ] = None,
    scenario_path: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            help=(
                "Answer as the scenario's embedded CSMS: its heartbeat interval, password, and "
                "embedded_csms settings (tx_limit_w, V2X profiles at grid.nominal_hz, "
                "deauthorize_share); "
                "the flags above override it."
            ),
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help=(
                "Processes sharing the port with SO_REUSEPORT, for more than one core or one "
                "process's open files; each keeps the state of the stations it serves."
            ),
        ),
    ] = 1,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port", help="Listen with SO_REUSEPORT, so other processes can share the port."
        ),
    ] = False,
    status_interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between status lines.", metavar="SECONDS")
    ] = 10.0,
    process_number: Annotated[
        int | None,
        typer.Option(hidden=True, help="Run as process N of a --processes parent."),
    ] = None,
) -> None:
    """Run the embedded CSMS alone, as a target for fleetsim or any other station."""
    import os

    from simulator.children import python_command
    from simulator.csms.processes import (
        CannotListen,
        CsmsProcessFailed,
        ServeOptions,
        run_processes,
        serve_in_this_process,
        standalone_csms_config,
    )

    if process_number is not None and processes != 1:
        typer.echo(
            "error: --process-number is for the processes that --processes starts; drop it",
            err=True,
        )
        raise typer.Exit(code=ExitCode.BAD_SCENARIO)
    try:
        scenario = load_scenario(scenario_path) if scenario_path is not None else None
        config = standalone_csms_config(
            scenario, heartbeat_interval_s=heartbeat_interval, password=password
        )
    except ScenarioError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=ExitCode.BAD_SCENARIO) from None
    try:
        if processes == 1:
            options = ServeOptions(host, port, reuse_port, status_interval, process_number)
            serve_in_this_process(config, options)
            return

        def worker_command(number: int, bound_port: int) -> list[str]:
            command = python_command("csms", "--host", host)
            command += ["--port", str(bound_port), "--processes", "1", "--reuse-port"]
            command += ["--status-interval", str(status_interval)]
            command += ["--process-number", str(number)]
            if scenario_path is not None:
                command += ["--scenario", str(scenario_path.resolve())]
            if heartbeat_interval is not None:
                command += ["--heartbeat-interval", str(heartbeat_interval)]
            return command

        # The password reaches the processes through the environment, not their command line,
        # where every user of the machine could read it.
        env = dict(os.environ)
        if password is not None:
            env["FLEETSIM_CSMS_PASSWORD"] = password
        run_processes(
            worker_command,
            host=host,
            port=port,
            processes=processes,
            status_interval_s=status_interval,
            env=env,
        )
    except CannotListen as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=ExitCode.BAD_SCENARIO) from None
    except CsmsProcessFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        bad_arguments = exc.while_starting and exc.exit_code == ExitCode.BAD_SCENARIO
        raise typer.Exit(
            code=ExitCode.BAD_SCENARIO if bad_arguments else ExitCode.WORKER_DIED
        ) from None
