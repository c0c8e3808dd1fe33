"""The typer application behind the `fleetsim` console script.

Commands stay thin: they turn arguments into a call on `simulator.api`, the engine's one door
for the command line, print the outcome and map it to an `ExitCode`.  Scenario problems go to
stderr, one line per problem, in the `file:line field: message` form that editors and CI logs
turn into links.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import fleetsim.simulator.api as api

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


def _fault_flags(**values: float | list[str] | None) -> tuple[tuple[str, str], ...]:
    """The fault flags given, as (flag, value) pairs in the order of `api.FAULT_FLAGS`."""
    pairs: list[tuple[str, str]] = []
    for flag, value in values.items():
        if value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            pairs.append((flag, f"{one:g}" if isinstance(one, float) else str(one)))
    return tuple(pairs)


def _describe(scenario: api.Scenario) -> str:
    """One line on what a scenario runs, for `validate` and for the start of a run."""
    stations = scenario.stations
    evses = len(stations.evse_specs)
    csms = f"CSMS {scenario.csms.url}" if scenario.csms.url else "embedded CSMS"
    profile = scenario.csms.security_profile
    if profile > 1:
        csms += f" (security profile {profile})"
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
            scenario = api.load_scenario(path)
        except api.ScenarioError as exc:
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
    typer.echo(json.dumps(api.scenario_json_schema(), indent=2))


@app.command()
def run(
    scenario_path: Annotated[
        Path, typer.Argument(help="Scenario YAML file.", metavar="SCENARIO", show_default=False)
    ],
    csms: Annotated[
        str | None,
        typer.Option(
            help=(
                "CSMS WebSocket URL (ws:// or wss://); stations append /<station id>, or put "
                "their id where the URL says {station_id} (wss://h/ocpp/{station_id}/)."
            )
        ),
    ] = None,
    stations: Annotated[int | None, typer.Option(help="Number of stations.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Wall seconds the run lasts.", metavar="SECONDS")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help=(
                "Simulated seconds per wall second [default: the scenario's; 1 when --csms "
                "points a scenario without csms.url at a CSMS]."
            ),
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help=(
                "Simulated start: now, or a date and time with a time zone "
                "(2026-01-15T06:00:00Z) [default: the scenario's; now when --csms points a "
                "scenario without csms.url at a CSMS]."
            ),
            metavar="now|DATETIME",
            show_default=False,
        ),
    ] = None,
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
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "A threshold the run must meet, such as 'p99_ms{action=BootNotification} < "
                "500' or 'error_rate < 0.01'; repeat for more. Adds to the scenario's "
                "thresholds; one that fails makes the exit code 1."
            ),
            metavar="EXPR",
            show_default=False,
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Write JUnit XML here: a test case per threshold and per kind of failure the "
                "run saw, for CI test reports."
            ),
            metavar="PATH",
        ),
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option(help="Write every frame of every station as JSON lines to this file."),
    ] = None,
    security_profile: Annotated[
        int | None,
        typer.Option(
            "--security-profile",
            min=1,
            max=3,
            help=(
                "OCPP security profile: 1 Basic auth, 2 TLS + Basic auth, 3 TLS with a client "
                "certificate per station. With the embedded CSMS, 2 and 3 serve wss:// with "
                "certificates made at start [default: the scenario's csms.security.profile]."
            ),
            show_default=False,
        ),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option(
            help="PEM file of the CA that issued the CSMS's certificate (default: the system's).",
            metavar="FILE",
        ),
    ] = None,
    client_cert: Annotated[
        str | None,
        typer.Option(
            help=(
                "Profile 3: PEM file of the stations' client certificate; {station_id} in it "
                "stands for the station id (certs/{station_id}.pem)."
            ),
            metavar="FILE",
        ),
    ] = None,
    client_key: Annotated[
        str | None,
        typer.Option(
            help="Profile 3: PEM file of the client certificate's key ({station_id} allowed).",
            metavar="FILE",
        ),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the stations' HTTP Basic password (profiles 1, 2).",
            metavar="NAME",
        ),
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
    drop: Annotated[
        list[str] | None,
        typer.Option(
            help="Close a share of the connections at a moment: " + api.FAULT_FLAGS["drop"] + ".",
            metavar="SHARE@AT",
            show_default=False,
        ),
    ] = None,
    drop_rate: Annotated[
        float | None,
        typer.Option(
            help="Close connections at random, this many per station and simulated hour.",
            metavar="RATE",
        ),
    ] = None,
    partition: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "Cut a share of the stations off the CSMS for a window; they charge offline and "
                "reconnect by RetryBackOff: " + api.FAULT_FLAGS["partition"] + "."
            ),
            metavar="SHARE@AT+FOR",
            show_default=False,
        ),
    ] = None,
    storm: Annotated[
        list[str] | None,
        typer.Option(
            help="Make a share of the stations reconnect at once: "
            + api.FAULT_FLAGS["storm"]
            + ".",
            metavar="SHARE@AT",
            show_default=False,
        ),
    ] = None,
    malformed_rate: Annotated[
        float | None,
        typer.Option(
            help="Send frames that are not valid OCPP-J, this many per station and simulated hour.",
            metavar="RATE",
        ),
    ] = None,
    duplicate_id_rate: Annotated[
        float | None,
        typer.Option(
            help="Send a CALL again with its message id, this many per station and simulated hour.",
            metavar="RATE",
        ),
    ] = None,
) -> None:
    """Run a fleet of stations against a CSMS (the embedded one when none is given).

    The fault flags add entries to the scenario's faults section (see the README, "Faults on
    purpose"); AT is a time of day (08:00), an offset (+30m) or a date and time, FOR a duration
    (10m), SHARE a fraction (0.2) or a percentage (20%).
    """
    from rich.console import Console

    request = api.RunRequest(
        scenario_path=scenario_path,
        overrides=api.ScenarioOverrides(
            stations=stations,
            duration_s=duration,
            speed=speed,
            seed=seed,
            ocpp_version=ocpp_version,
            csms_url=csms,
            metrics_port=metrics_port,
            start=start,
            fault_flags=_fault_flags(
                drop=drop,
                drop_rate=drop_rate,
                partition=partition,
                storm=storm,
                malformed_rate=malformed_rate,
                duplicate_id_rate=duplicate_id_rate,
            ),
            security_profile=security_profile,
            ca_file=ca_file,
            client_cert=client_cert,
            client_key=client_key,
            password_env=password_env,
        ),
        shard=shard,
        workers=workers,
        worker=worker,
        source_addresses=source_address,
        in_memory=fast,
        trace_path=trace,
        summary_json_path=summary_json,
        report_dir=report_dir,
        show_progress=progress,
        thresholds=tuple(threshold or ()),
        junit_path=junit,
    )
    # From here on Ctrl-C and SIGTERM stop the run with its summary, even while it loads.
    with api.stop_signals_caught(request):
        try:
            plan = api.plan_run(request)
        except (api.ScenarioError, api.RunRefused) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=ExitCode.BAD_SCENARIO) from None
        if worker is not None:
            # A worker's stdout carries its reports to the parent; people read the parent.
            console = Console(stderr=True, quiet=True)
        else:
            # soft_wrap: long lines (errors, URLs) stay whole in CI logs instead of breaking at 80.
            console = Console(highlight=False, soft_wrap=True)
        console.print(f"fleetsim: {plan.scenario.name}: {_describe(plan.scenario)}")
        for warning in plan.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if fast and csms is not None:
            typer.echo("--fast runs against the embedded CSMS; drop --csms", err=True)
            raise typer.Exit(code=ExitCode.BAD_SCENARIO)
        outcome = api.run_fleet(plan, console)
    raise typer.Exit(code=_exit_code(outcome))


def _exit_code(outcome: api.RunOutcome) -> ExitCode:
    """The one exit code of a run, the gravest first: a dead worker, a CSMS that could not
    be reached, Ctrl-C, a CSMS that accepted no station, a failed threshold."""
    if outcome.workers_died:
        return ExitCode.WORKER_DIED
    if outcome.csms_unreachable:
        return ExitCode.CSMS_UNREACHABLE
    if outcome.interrupted:
        return ExitCode.INTERRUPTED
    if outcome.no_station_accepted is not None:
        return ExitCode.CSMS_UNREACHABLE
    if outcome.thresholds_failed:
        return ExitCode.THRESHOLD_FAILED
    return ExitCode.OK


@app.command("ev-models")
def ev_models_command() -> None:
    """List the EV models of the catalogue, with the figures the simulation uses."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="EV models (ev_models/data/catalogue.yaml; sources there)")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    for column in ("battery kWh", "AC kW", "DC kW", "ISO 15118-20", "V2G"):
        table.add_column(column, justify="right")
    for name, model in sorted(api.ev_model_catalogue().items()):
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
            help="Require this HTTP Basic password from every station (profiles 1 and 2).",
        ),
    ] = None,
    security_profile: Annotated[
        int,
        typer.Option(
            "--security-profile",
            min=1,
            max=3,
            help=(
                "1: ws://; 2: wss:// with a server certificate made at start; 3: wss:// that "
                "also requires each station's client certificate, its common name the station id."
            ),
        ),
    ] = 1,
    tls_dir: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Write the CA certificate (ca.pem) that stations must trust here "
                "[default: a temporary directory, printed at start]."
            ),
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            help="Profile 3: also accept station certificates issued by this CA (PEM).",
            metavar="FILE",
        ),
    ] = None,
    scenario_path: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            help=(
                "Answer as the scenario's embedded CSMS: its heartbeat interval, password, and "
                "embedded_csms settings (tx_limit_w, V2X profiles at grid.nominal_hz, "
                "deauthorize_share, priority_share; not reserve_share, which needs the "
                "drivers of a run in the same process); "
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
    until_stdin_closes: Annotated[
        bool,
        typer.Option(
            "--until-stdin-closes",
            hidden=True,
            help="Stop when stdin closes: the parent that started this CSMS is gone.",
        ),
    ] = False,
) -> None:
    """Run the embedded CSMS alone, as a target for fleetsim or any other station."""
    if process_number is not None and processes != 1:
        typer.echo(
            "error: --process-number is for the processes that --processes starts; drop it",
            err=True,
        )
        raise typer.Exit(code=ExitCode.BAD_SCENARIO)
    request = api.CsmsRequest(
        host=host,
        port=port,
        scenario_path=scenario_path,
        heartbeat_interval_s=heartbeat_interval,
        password=password,
        processes=processes,
        reuse_port=reuse_port,
        status_interval_s=status_interval,
        process_number=process_number,
        until_stdin_closes=until_stdin_closes,
        security_profile=security_profile,
        tls_dir=tls_dir,
        client_ca_file=client_ca,
    )
    try:
        outcome = api.serve_csms(request)
    except api.ScenarioError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=ExitCode.BAD_SCENARIO) from None
    if outcome.error is not None:
        typer.echo(f"error: {outcome.error}", err=True)
        bad = outcome.bad_arguments
        raise typer.Exit(code=ExitCode.BAD_SCENARIO if bad else ExitCode.WORKER_DIED)
    if outcome.interrupted:
        # The same rule as `fleetsim run`: stopped by Ctrl-C or SIGTERM is 130.
        raise typer.Exit(code=ExitCode.INTERRUPTED)
