"""`fleetsim csms --processes K`: K processes on one port, and the CSMS's settings from a scenario.

The multi-process tests run the command as a user does, as a real process on loopback, and
talk to it with bare trio-websocket clients; every wait is bounded.  Which process served a
connection is read from the supervisor's status line (connections accepted per process), which
the processes themselves report.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.processes import csms_config_for, standalone_csms_config
from fleetsim.simulator.csms.state import StationState
from fleetsim.simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
FLEETSIM = [sys.executable, "-m", "fleetsim.cli"]
#: Bound of every wait on a process: generous, since other benchmarks may share the machine.
WAIT_S = 60
BOOT_FRAME = (
    '[2,"boot","BootNotification",{"reason":"PowerUp",'
    '"chargingStation":{"model":"test","vendorName":"fleetsim"}}]'
)
_FIRST_LINE = re.compile(r"^embedded CSMS on ws://127\.0\.0\.1:(\d+)/ocpp \(stations connect to ")
_PER_PROCESS = re.compile(r"connections accepted per process: ([\d, ]+)\)")
_PIDS = re.compile(r"process (\d+) pid (\d+)")


class Lines:
    """The lines a process writes to its stdout, read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.seen: list[str] = []

    async def next(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise EOFError(f"the process closed its output; it printed {self.seen}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self.seen.append(line.decode())
        return self.seen[-1]

    async def rest(self) -> list[str]:
        """Every line up to the end of the output."""
        lines = []
        while True:
            try:
                lines.append(await self.next())
            except EOFError:
                return lines


@asynccontextmanager
async def csms_process(
    arguments: Sequence[str],
    stderr_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdin_pipe: bool = False,
) -> AsyncIterator[tuple[trio.Process, Lines, int]]:
    """`fleetsim csms --port 0 ARGUMENTS`, its stdout lines and the port of its first line;
    killed at the end if the test left it running.  With `stdin_pipe`, its stdin is a pipe
    from the test, as from a parent."""
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [*FLEETSIM, "csms", "--port", "0", *arguments],
            stdin=subprocess.PIPE if stdin_pipe else None,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
            env=env,
        )
    try:
        assert process.stdout is not None
        lines = Lines(process.stdout)
        with trio.fail_after(WAIT_S):
            first = await lines.next()
        match = _FIRST_LINE.match(first)
        assert match is not None, first
        yield process, lines, int(match.group(1))
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(WAIT_S, shield=True):
            await process.wait()


async def boot(
    stack: AsyncExitStack, port: int, station_id: str, password: str | None = None
) -> tuple[WebSocketConnection, Mapping[str, Any]]:
    """Connect `station_id` (kept open until `stack` closes) and return its boot answer."""
    headers = []
    if password is not None:
        token = base64.b64encode(f"{station_id}:{password}".encode())
        headers.append((b"Authorization", b"Basic " + token))
    connection = await stack.enter_async_context(
        open_websocket_url(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}",
            subprotocols=["ocpp2.1"],
            extra_headers=headers,
        )
    )
    assert connection.subprotocol == "ocpp2.1"
    await connection.send_message(BOOT_FRAME)
    answer = json.loads(await connection.get_message())
    assert answer[:2] == [3, "boot"], answer
    return connection, answer[2]


async def connections_per_process(lines: Lines, total: int) -> list[int]:
    """The per-process counts of the first status line in which they add up to `total`."""
    while True:
        match = _PER_PROCESS.search(await lines.next())
        if match is not None:
            counts = [int(part) for part in match.group(1).split(",")]
            if sum(counts) == total:
                return counts


@pytest.mark.slow
async def test_two_processes_share_the_port_and_both_serve_stations(tmp_path: Path) -> None:
    stations = 40
    async with csms_process(
        ["--processes", "2", "--status-interval", "0.2"], tmp_path / "stderr"
    ) as (process, lines, port):
        with trio.fail_after(WAIT_S):
            pids = {int(n): int(pid) for n, pid in _PIDS.findall(await lines.next())}
            assert sorted(pids) == [0, 1]
            async with AsyncExitStack() as stack:
                answers = [
                    (await boot(stack, port, f"CP{index:02d}"))[1] for index in range(stations)
                ]
                counts = await connections_per_process(lines, stations)
            process.send_signal(signal.SIGINT)
            rest = await lines.rest()
            await process.wait()
    assert {(answer["status"], answer["interval"]) for answer in answers} == {("Accepted", 300)}
    # The kernel spread the connections: each process accepted some (all 40 on one process
    # would happen with probability 2 / 2**40).
    assert len(counts) == 2 and min(counts) > 0, counts
    assert process.returncode == ExitCode.INTERRUPTED, (tmp_path / "stderr").read_text()
    assert rest[-1] == "stopped"
    for number, pid in pids.items():
        final = f"process {number} (pid {pid}) accepted {counts[number]} connections"
        assert any(line.startswith(final) for line in rest), rest


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_signal_ends_the_csms_with_the_exit_code_of_a_stopped_run(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """`fleetsim csms` and `fleetsim run` follow one rule: stopped by Ctrl-C (or SIGTERM), the
    process exits 130, so a script tells a stop from a clean end the same way for both."""
    async with csms_process([], tmp_path / "stderr") as (process, lines, port):
        async with AsyncExitStack() as stack:
            _connection, answer = await boot(stack, port, "CP01")
            assert answer["status"] == "Accepted"
        process.send_signal(stop_signal)
        with trio.fail_after(WAIT_S):
            rest = await lines.rest()
            await process.wait()
    assert process.returncode == ExitCode.INTERRUPTED, (tmp_path / "stderr").read_text()
    assert rest[-1] == "stopped"


@pytest.mark.slow
async def test_a_process_that_dies_stops_the_csms_with_an_error_naming_it(
    tmp_path: Path,
) -> None:
    stderr_path = tmp_path / "stderr"
    async with csms_process(["--processes", "2"], stderr_path) as (process, lines, _port):
        with trio.fail_after(WAIT_S):
            pids = {int(n): int(pid) for n, pid in _PIDS.findall(await lines.next())}
        os.kill(pids[1], signal.SIGKILL)
        with trio.fail_after(20):
            rest = await lines.rest()
            await process.wait()
    assert process.returncode == ExitCode.WORKER_DIED
    error = stderr_path.read_text()
    assert f"CSMS process 1 (pid {pids[1]}) was killed by signal SIGKILL" in error
    assert f"process 1 (pid {pids[1]}) was killed by signal SIGKILL" in "\n".join(rest)
    # The other process was stopped, not left serving half the stations.
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


@pytest.mark.slow
@pytest.mark.parametrize("processes", ["1", "2"])
async def test_a_csms_whose_parent_is_gone_stops_with_all_its_processes(
    tmp_path: Path, processes: str
) -> None:
    """`--until-stdin-closes`, as a `fleetsim run --workers` parent starts its embedded CSMS:
    the end of stdin, a pipe from that parent, means the parent is gone."""
    arguments = ["--processes", processes, "--until-stdin-closes"]
    async with csms_process(arguments, tmp_path / "stderr", stdin_pipe=True) as (
        process,
        lines,
        _port,
    ):
        pids = []
        if processes == "2":
            with trio.fail_after(WAIT_S):
                pids = [int(pid) for _number, pid in _PIDS.findall(await lines.next())]
        assert process.stdin is not None
        await process.stdin.aclose()
        with trio.fail_after(WAIT_S):
            rest = await lines.rest()
            await process.wait()
    assert process.returncode == 0, (tmp_path / "stderr").read_text()
    assert rest[-1] == "stopped"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.slow
async def test_every_process_answers_with_the_scenario_and_the_password(tmp_path: Path) -> None:
    # reference-load.yaml gives stations a 60 s heartbeat (the default is 300); the password
    # goes to the processes through the environment, so it is checked in each of them.
    env = {**os.environ, "FLEETSIM_CSMS_PASSWORD": "s3cret-pass"}
    arguments = ["--processes", "2", "--scenario", "scenarios/reference-load.yaml"]
    async with csms_process([*arguments, "--status-interval", "0.2"], tmp_path / "stderr", env) as (
        _process,
        lines,
        port,
    ):
        # The stack is inside the deadline's scope: the connections open scopes of their own,
        # which must close before it does.
        with trio.fail_after(WAIT_S):
            async with AsyncExitStack() as stack:
                answers = [
                    (await boot(stack, port, f"REF{index:02d}", "s3cret-pass"))[1]
                    for index in range(20)
                ]
                counts = await connections_per_process(lines, 20)
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(
                    f"ws://127.0.0.1:{port}/ocpp/NOPASS", subprotocols=["ocpp2.1"]
                ):
                    pass
    assert {(answer["status"], answer["interval"]) for answer in answers} == {("Accepted", 60)}
    assert min(counts) > 0, counts
    assert rejected.value.status_code == 401


async def test_two_csms_objects_with_reuse_port_listen_on_one_port() -> None:
    first, second = Csms(), Csms()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(first.serve, "127.0.0.1", 0, reuse_port=True))
        second_port = await nursery.start(partial(second.serve, "127.0.0.1", port, reuse_port=True))
        assert second_port == port
        nursery.cancel_scope.cancel()


# -- the settings from a scenario ----------------------------------------------------------


class RecordingCsms:
    """Stands in for `Csms` in a reaction: keeps what the reaction would send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Mapping[str, Any]]] = []
        self.stations: dict[str, StationState] = {}

    def station(self, station_id: str) -> StationState:
        return self.stations.setdefault(station_id, StationState(station_id))

    async def call_quietly(
        self, station_id: str, action: str, payload: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        self.sent.append((station_id, action, payload))
        return {"status": "Accepted"}


async def test_the_scenario_sets_the_transaction_limit_and_heartbeat() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "workplace-morning-peak.yaml")
    config = csms_config_for(scenario)
    assert config.heartbeat_interval_s == scenario.stations.heartbeat_interval_s
    assert config.record_messages is False
    assert set(config.reactions) == {"TransactionEvent", "BootNotification"}
    csms = RecordingCsms()
    started = {"eventType": "Started", "evse": {"id": 1}, "transactionInfo": {"transactionId": "T"}}
    await config.reactions["TransactionEvent"](csms, "CP1", started, {})
    [(_, action, payload)] = csms.sent
    periods = payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert (action, periods[0]["limit"]) == ("SetChargingProfile", 7400)


def test_the_scenario_sets_the_share_of_transactions_deauthorized() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    assert scenario.embedded_csms.deauthorize_share > 0
    config = csms_config_for(scenario)
    assert config.deauthorize_share == scenario.embedded_csms.deauthorize_share
    assert (
        csms_config_for(load_scenario(ROOT / "scenarios" / "depot-24h.yaml")).deauthorize_share == 0
    )


async def test_the_scenario_sets_the_v2x_profile_at_its_nominal_frequency() -> None:
    config = csms_config_for(load_scenario(ROOT / "scenarios" / "v2x-frequency-event.yaml"))
    assert set(config.reactions) == {"NotifyEVChargingNeeds"}
    assert config.steers_bidirectional_evs
    csms = RecordingCsms()
    csms.station("HOME-0001").record_request(
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": "2026-01-15T12:00:00Z",
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "T1"},
            "evse": {"id": 1},
        },
    )
    needs = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_BPT"}}
    await config.reactions["NotifyEVChargingNeeds"](
        csms, "HOME-0001", needs, {"status": "Accepted"}
    )
    [(_, allowed_action, allowed), (_, _, payload)] = csms.sent
    assert allowed_action == "NotifyAllowedEnergyTransfer"
    assert allowed == {"transactionId": "T1", "allowedEnergyTransfer": ["AC_BPT"]}
    assert payload["chargingProfile"]["transactionId"] == "T1"
    [period] = payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert period["operationMode"] == "LocalFrequency"
    curve = period["v2xFreqWattCurve"]
    assert (curve[0]["frequency"], curve[0]["power"]) == (pytest.approx(49.8), -11000)


def test_flags_override_the_scenario_and_defaults_need_none() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "reference-load.yaml")
    assert standalone_csms_config(scenario).heartbeat_interval_s == 60
    overridden = standalone_csms_config(scenario, heartbeat_interval_s=42, password="pw")
    assert (overridden.heartbeat_interval_s, overridden.basic_auth_passwords) == (42, "pw")
    plain = standalone_csms_config(None)
    default = CsmsConfig()
    assert (plain.heartbeat_interval_s, plain.basic_auth_passwords, plain.reactions) == (
        default.heartbeat_interval_s,
        None,
        {},
    )
