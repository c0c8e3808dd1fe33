"""Every way a connection attempt can end is one label value, known before the first attempt:
the code raises no outcome outside `link.CONNECT_OUTCOMES`, each is a series at 0 on a fresh
/metrics, and a failure on this machine is said to be one, in the error and in the summary."""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import resource
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console
from trio.testing import MockClock

from fleetsim import simulator
from fleetsim.simulator.link import CONNECT_OUTCOMES, LOCAL_CONNECT_OUTCOMES, Answer, ConnectError
from fleetsim.simulator.metrics import FRAME_DROP_REASONS, RunStatsCollector
from fleetsim.simulator.report.summary import no_station_accepted
from fleetsim.simulator.run import RunOptions, run_scenario
from fleetsim.simulator.scenario import Scenario
from fleetsim.simulator.station.blocks import security
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import ConnectionSettings, open_station_link
from tests.transport.test_source_addresses import _absent_address

PACKAGE = Path(simulator.__file__).parent


def _connect_error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """`ConnectError` and every class of the package derived from it."""
    names = {"ConnectError"}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
                    if bases & names:
                        names.add(node.name)
                        grew = True
    return names


def _raised_outcomes() -> dict[str, list[str]]:
    """Each outcome a `ConnectError` (or a subclass) is made with anywhere in the package,
    with where: the second argument, a string or a module constant."""
    trees = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): ast.parse(
            path.read_text(), str(path)
        )
        for path in PACKAGE.rglob("*.py")
    }
    classes = _connect_error_classes(trees)
    found: dict[str, list[str]] = {}
    for module_name, tree in trees.items():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in classes
            ):
                continue
            argument = next((k.value for k in node.keywords if k.arg == "outcome"), None)
            if argument is None:
                assert len(node.args) >= 2, f"{module_name}:{node.lineno} gives no outcome"
                argument = node.args[1]
            if isinstance(argument, ast.Constant):
                outcome = argument.value
            else:
                assert isinstance(argument, ast.Name), f"{module_name}:{node.lineno}"
                outcome = getattr(importlib.import_module(module_name), argument.id)
            found.setdefault(outcome, []).append(f"{module_name}:{node.lineno}")
    return found


def test_every_outcome_the_code_raises_is_in_the_one_list_and_none_is_dead() -> None:
    raised = _raised_outcomes()
    unknown = {
        outcome: where for outcome, where in raised.items() if outcome not in CONNECT_OUTCOMES
    }
    assert not unknown
    # The list has no outcome that nothing produces: "ok" is counted by the station itself.
    assert set(raised) | {"ok"} == set(CONNECT_OUTCOMES)
    assert sum(len(where) for where in raised.values()) >= 20
    assert set(LOCAL_CONNECT_OUTCOMES) < set(CONNECT_OUTCOMES)
    assert set(security._TLS_EVENTS) < set(CONNECT_OUTCOMES)


@contextlib.contextmanager
def _metrics_endpoint(stats: RunStats) -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(RunStatsCollector(lambda: [stats]))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            found[labels[len(name) :]] = float(value)
    return found


def test_a_fresh_metrics_endpoint_shows_every_outcome_at_zero() -> None:
    stats = RunStats()
    with _metrics_endpoint(stats) as url:
        fresh = urllib.request.urlopen(url, timeout=10).read().decode()
        stats.connection_attempt("timeout")
        later = urllib.request.urlopen(url, timeout=10).read().decode()
    attempts = _samples(fresh, "fleetsim_connection_attempts_total")
    assert attempts == {f'{{outcome="{outcome}"}}': 0.0 for outcome in CONNECT_OUTCOMES}
    # What `increase(...{outcome="timeout"}[5m]) > 0` sees: the series was there at 0, then 1.
    assert _samples(later, "fleetsim_connection_attempts_total")['{outcome="timeout"}'] == 1
    dropped = _samples(fresh, "fleetsim_frames_dropped_total")
    assert dropped == {f'{{reason="{reason}"}}': 0.0 for reason in FRAME_DROP_REASONS}


# -- failures on this machine ---------------------------------------------------------------


def _refuse(action: str, payload: Any) -> Answer:
    raise AssertionError("no CALL expected")


@contextlib.contextmanager
def _no_file_descriptor_left() -> Iterator[None]:
    """The open-file limit lowered to the lowest free descriptor, the one the next socket
    would get: that socket fails (EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_process_out_of_file_descriptors_blames_itself() -> None:
    async def connect() -> ConnectError:
        with trio.socket.socket() as listener:
            await listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            url = f"ws://127.0.0.1:{port}/ocpp"
            settings = ConnectionSettings(csms_url=url, connect_timeout_s=5)
            async with trio.open_nursery() as nursery:
                with _no_file_descriptor_left(), pytest.raises(ConnectError) as error:
                    async with open_station_link(
                        "CP1", settings, _refuse, spawn=nursery.start_soon, observer=RunStats()
                    ):
                        pass
            return error.value

    error = trio.run(connect)
    assert error.outcome == "local_files"
    message = str(error)
    assert message.startswith("station CP1: cannot connect to ws://127.0.0.1:")
    assert "no file descriptor is left for the socket (EMFILE: this process may open " in message
    assert "--workers" in message and "is the CSMS running" not in message


def _unreachable_summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "stations_total": 4,
        "stations_booted": 0,
        "stations_connected_peak": 0,
        "csms_url": "ws://127.0.0.1:9000/ocpp",
        "connection_attempts": 8,
        "connection_failures": 8,
        "connection_failures_by_outcome": {"local_files": 8},
        "calls": {},
    }
    return summary | changes


def test_the_conclusion_names_each_local_cause_with_its_fix() -> None:
    assert no_station_accepted(_unreachable_summary()) == (
        "none of the 4 stations reached the CSMS at ws://127.0.0.1:9000/ocpp: the cause is on "
        "this machine, not the CSMS: 8 of 8 connection attempts failed because no file "
        "descriptor was left for the socket: run the stations over more processes "
        "(--workers), or raise the open-file limit (`ulimit -n`); the errors below say more"
    )
    mixed = no_station_accepted(
        _unreachable_summary(connection_failures_by_outcome={"local_ports": 3, "refused": 5})
    )
    assert mixed == (
        "the CSMS at ws://127.0.0.1:9000/ocpp accepted none of the 4 stations: no station "
        "could connect to ws://127.0.0.1:9000/ocpp (8 of 8 connection attempts failed; on "
        "this machine: 3 of 8 connection attempts failed because no local port was left on "
        "the source address: give more addresses with --source-address, or run fewer "
        "stations on this machine (--shard I/N); the errors below say how)"
    )
    refused = no_station_accepted(
        _unreachable_summary(connection_failures_by_outcome={"refused": 8})
    )
    assert refused == (
        "the CSMS at ws://127.0.0.1:9000/ocpp accepted none of the 4 stations: no station "
        "could connect to ws://127.0.0.1:9000/ocpp (8 of 8 connection attempts failed; the "
        "errors below say how)"
    )


def test_a_run_whose_source_address_is_gone_blames_this_machine_not_the_csms() -> None:
    """The stations connect from an address this machine does not have, as after it was
    removed mid-run (`plan_run` refuses one missing at the start): every connection fails in
    `bind`, on loopback, and the summary says the cause is here and what to do."""
    absent = _absent_address()
    scenario = Scenario.model_validate(
        {
            "name": "gone-address",
            "seed": 1,
            "speed": 60,
            "duration_s": 600,
            "stations": {"count": 4, "ramp_up_per_s": 100},
            "sites": [{"name": "s", "arrivals_per_evse_per_day": 0}],
        }
    )
    options = RunOptions(show_progress=False, source_addresses=(absent,))

    async def run() -> Any:
        with trio.fail_after(600):
            return await run_scenario(scenario, options, Console(quiet=True))

    outcome = trio.run(run, clock=MockClock(autojump_threshold=0))
    summary = outcome.summary
    assert summary["stations_connected_peak"] == 0
    failures = summary["connection_failures"]
    assert failures >= 4
    assert summary["connection_failures_by_outcome"] == {"source_address": failures}
    reason = summary["no_station_accepted"]
    assert reason.startswith("none of the 4 stations reached the CSMS at ws://127.0.0.1:")
    assert "accepted none" not in reason
    assert (
        f": the cause is on this machine, not the CSMS: {failures} of {failures} connection "
        "attempts failed because the source address is not one of this machine's (or no "
        "longer is): give addresses of this machine with --source-address" in reason
    )
    assert summary["errors"][0] == reason
    assert any(
        f"from {absent}: {absent} is not an address of this machine" in error
        for error in summary["errors"]
    )
