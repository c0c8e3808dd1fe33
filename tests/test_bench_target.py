"""The cheap benchmark target (bench/target.py) answers like a CSMS, over a real socket.

The round-trip benchmark's figures are only as good as its target: if the target answered
with frames a station rejects, or echoed the wrong id, the clients would measure errors.  These
tests start bench/target.py as a subprocess on loopback, talk OCPP-J to it with trio-websocket,
and check the answers against the official response schemas.  The target needs picows (a
benchmark-only dependency), so the socket tests are skipped where it is not installed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from fleetsim.simulator.ocpp import OcppVersion, schema_set

TARGET_PATH = Path(__file__).resolve().parent.parent / "bench" / "target.py"
TIMEOUT_S = 20.0
BOOT = (
    '[2,"boot-1","BootNotification",{"reason":"PowerUp",'
    '"chargingStation":{"model":"bench","vendorName":"bench"}}]'
)
HEARTBEAT = '[2,"hb-2","Heartbeat",{}]'


def _load_target() -> ModuleType:
    """bench/ is not a package: load target.py by path (it imports nothing beyond the standard
    library until it serves)."""
    spec = importlib.util.spec_from_file_location("bench_target", TARGET_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


target = _load_target()


def _needs_picows() -> None:
    pytest.importorskip(
        "picows", reason="bench/target.py serves with picows (pip install .[bench])"
    )


def _result(frame: str, message_id: str) -> dict[str, Any]:
    message = json.loads(frame)
    assert message[:2] == [3, message_id], frame
    payload: dict[str, Any] = message[2]
    return payload


def _assert_recent(timestamp: str) -> None:
    assert timestamp.endswith("Z")
    when = dt.datetime.fromisoformat(timestamp.removesuffix("Z") + "+00:00")
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60


async def _boot_and_beat(url: str, subprotocol: str, version: OcppVersion) -> None:
    with trio.fail_after(TIMEOUT_S):
        async with open_websocket_url(f"{url}/CP0001", subprotocols=[subprotocol]) as ws:
            assert ws.subprotocol == subprotocol
            await ws.send_message(BOOT)
            boot = _result(await ws.get_message(), "boot-1")
            await ws.send_message(HEARTBEAT)
            heartbeat = _result(await ws.get_message(), "hb-2")
    assert boot["status"] == "Accepted"
    assert boot["interval"] == 120
    _assert_recent(boot["currentTime"])
    _assert_recent(heartbeat["currentTime"])
    schemas = schema_set(version)
    schemas.validate("BootNotification", "Response", boot)
    schemas.validate("Heartbeat", "Response", heartbeat)


@pytest.mark.parametrize(("subprotocol", "version"), [("ocpp2.1", "2.1"), ("ocpp2.0.1", "2.0.1")])
async def test_boot_and_heartbeat_get_schema_valid_answers_with_the_id_echoed(
    subprotocol: str, version: OcppVersion
) -> None:
    _needs_picows()
    with target.run_target(processes=1, heartbeat_interval_s=120) as running:
        assert running.url.startswith("ws://127.0.0.1:")
        await _boot_and_beat(running.url, subprotocol, version)
        assert running.cpu_s() >= 0
    # On SIGTERM each process reports what it did and exits cleanly.
    [summary] = running.summaries
    assert summary["round_trips"] == 2
    assert summary["connections"] == 1
    assert all(process.returncode == 0 for process in running.processes)


async def test_a_station_offering_no_ocpp_2_subprotocol_is_closed_with_a_protocol_error() -> None:
    _needs_picows()
    with target.run_target(processes=1, heartbeat_interval_s=120) as running:
        with trio.fail_after(TIMEOUT_S):
            async with open_websocket_url(f"{running.url}/CP0001", subprotocols=["ocpp1.6"]) as ws:
                assert ws.subprotocol is None
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
        assert closed.value.reason.code == 1002


async def test_the_command_line_runs_two_processes_on_one_port_and_reports_on_sigterm() -> None:
    _needs_picows()
    process = subprocess.Popen(
        [
            *(sys.executable, str(TARGET_PATH)),
            *("--port", "0", "--processes", "2", "--heartbeat-interval", "120"),
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a stray signal to this test's group does not reach it
    )
    try:
        line = target.read_line(process, TIMEOUT_S)
        assert line.startswith("target on ws://127.0.0.1:")
        url = line.removeprefix("target on ")
        await _boot_and_beat(url, "ocpp2.1", "2.1")
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:  # the test failed midway: stop the workers too
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["round_trips"] == 2
    assert len(summary["processes"]) == 2


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
@pytest.mark.parametrize(
    "action",
    [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
        "TransactionEvent",
        "MeterValues",
        "NotifyReport",
        "NotifyEvent",
        "SecurityEventNotification",
        "DataTransfer",
        "NotifyEVChargingNeeds",
        "SignCertificate",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "FirmwareStatusNotification",
    ],
)
def test_every_answer_is_valid_against_the_response_schema(
    action: str, version: OcppVersion
) -> None:
    answer = target.Answers(heartbeat_interval_s=300).answer(f'[2,"x-1","{action}",{{}}]'.encode())
    schema_set(version).validate(action, "Response", _result(answer.decode(), "x-1"))


def test_a_transaction_event_with_an_id_token_gets_it_accepted() -> None:
    answers = target.Answers(heartbeat_interval_s=300)
    with_token = (
        b'[2,"t-1","TransactionEvent",{"eventType":"Started",'
        b'"idToken":{"idToken":"04A2","type":"ISO14443"}}]'
    )
    assert _result(answers.answer(with_token).decode(), "t-1") == {
        "idTokenInfo": {"status": "Accepted"}
    }
    without = b'[2,"t-2","TransactionEvent",{"eventType":"Updated"}]'
    assert _result(answers.answer(without).decode(), "t-2") == {}


def test_frames_off_the_fast_path_are_parsed_and_only_calls_are_answered() -> None:
    answers = target.Answers(heartbeat_interval_s=300)
    # Whitespace and an escaped quote in the id: parsed, and the id comes back intact.
    spaced = b'[2, "a\\"b", "Authorize", {"idToken": {"idToken": "1", "type": "Central"}}]'
    assert json.loads(answers.answer(spaced)) == [3, 'a"b', {"idTokenInfo": {"status": "Accepted"}}]
    # A CALLRESULT, a CALLERROR, a SEND and garbage get no answer.
    for frame in (b'[3,"1",{}]', b'[4,"1","GenericError","",{}]', b'[6,"1","X",{}]', b"nope"):
        assert answers.answer(frame) is None
    # A CALL with a readable id but a broken shape gets a CALLERROR.
    assert json.loads(answers.answer(b'[2,"c-1","Heartbeat"]'))[:3] == [4, "c-1", "FormatViolation"]
