"""Block B, provisioning: boot, heartbeat, the device model over OCPP, and Reset.

B01-B04  BootNotification until Accepted; while Pending or Rejected nothing else is sent,
         except what the CSMS itself triggers during Pending.
B05-B07  SetVariables (with real effect), GetVariables, GetBaseReport answered by NotifyReport.
B11-B12  Reset, idle or with transactions (Immediate ends them, OnIdle waits for them).
B13/E17  Reset ImmediateAndResume (2.1): the transactions pause (an Updated event with
         triggerReason ResetCommand, then no energy while the station is down) and resume after
         the reboot with the same transactionId and the next seqNo (Updated, TxResumed), with
         energy again when TxCtrlr.AllowEnergyTransferResumption says so, else SuspendedEVSE.
         Refused while TxCtrlr.ResumptionTimeout is 0 or shorter than the reboot.  A
         transaction still running after any other reboot ends (AbnormalCondition, Reboot).

The block owns OCPPCommCtrlr's connection variables (heartbeat, retry back-off, message
timeout), DeviceDataCtrlr, ClockCtrlr and (2.1) TxCtrlr's resumption variables.  It provides
the station's `register` hook (boot until accepted) and its `online` hook (the heartbeat).
TriggerMessage can make it send a BootNotification (during Pending), a Heartbeat, and the
status of firmware and log transfers and of firmware publishing: Idle, which is the truth,
since a fleetsim station never has any of them under way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from ...clock import Alarm
from ...link import Answer, FollowUp, Link
from ...ocpp import CallErrorReceived, CallTimeout, ErrorCode, RpcError
from ..config import StationConfig
from ..core import (
    Block,
    Restarted,
    StationCore,
    TransactionEnded,
    TriggerTarget,
    VariableChanged,
    in_parts,
    refused,
)
from ..device_model import AttributeResult, VariableSpec
from ..evse import Evse
from ..transaction import end_transaction, update_transaction

__all__ = ["BLOCK"]


@dataclass(slots=True)
class ProvisioningState:
    """Per station: where the heartbeat sleeps, whether a Reset waits for idle, and whether
    the reboot under way resumes the transactions (ImmediateAndResume)."""

    heartbeat_alarm: Alarm = field(default_factory=Alarm)
    reset_scheduled: bool = False
    resume_after_reboot: bool = False


#: Simulated seconds to wait before retrying a boot that got a CALLERROR or no answer.
BOOT_RETRY_S = 60.0


def boot_payload(station: StationCore) -> dict[str, Any]:
    config = station.config
    return {
        "reason": station.boot_reason,
        "chargingStation": {
            "model": config.model,
            "vendorName": config.vendor,
            "serialNumber": station.id[-25:],
            "firmwareVersion": config.firmware_version,
        },
    }


async def boot_until_accepted(station: StationCore, link: Link) -> None:
    """Send BootNotification until the CSMS accepts the station (B01-B03).

    Registration survives reconnects: a station the CSMS already accepted does not boot again
    after a network outage, only after a reboot.
    """
    while station.registration != "Accepted":
        station.set_state("booting")
        try:
            response = await link.call("BootNotification", boot_payload(station))
        except (CallErrorReceived, CallTimeout):
            await _wait_for_boot_retry(station, BOOT_RETRY_S)
            continue
        status = response["status"]
        interval_s = int(response["interval"])
        if status == "Accepted":
            station.registration = "Accepted"
            station.set_state("accepted")
            if interval_s > 0:
                station.device_model.store(_HEARTBEAT, str(interval_s))
            if not station.stats_booted_once:
                station.stats_booted_once = True
                station.stats.station_booted()
            return
        station.registration = status
        station.set_state("pending" if status == "Pending" else "rejected")
        wait_s = interval_s if interval_s > 0 else station.config.heartbeat_interval_s
        await _wait_for_boot_retry(station, wait_s)


async def _wait_for_boot_retry(station: StationCore, wait_s: float) -> None:
    """Sleep `wait_s` simulated seconds, or less if TriggerMessage asks for a boot."""
    wake = station.boot_wake_event()
    with trio.move_on_after(station.clock.trio_duration(wait_s)):
        await wake.wait()


_HEARTBEAT = ("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None)


async def heartbeat_forever(station: StationCore) -> None:
    """Heartbeat every HeartbeatInterval; a new interval applies from the moment it is set."""
    alarm = station.block_state(BLOCK).heartbeat_alarm
    while True:
        interval_s = station.device_model.integer("OCPPCommCtrlr", "HeartbeatInterval")
        deadline = trio.current_time() + station.clock.trio_duration(interval_s)
        if await alarm.sleep_until(deadline):
            continue  # the interval changed: start a new one from now
        await station.call("Heartbeat", {})


# -- B05-B07: the device model over OCPP ------------------------------------------------------


def _check_items(station: StationCore, items: list[Any], instance: str) -> None:
    limit = station.device_model.integer("DeviceDataCtrlr", "ItemsPerMessage", instance)
    if len(items) > limit:
        raise RpcError(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            f"{len(items)} items in one {instance} request; ItemsPerMessage is {limit}",
        )


#: StatusInfoType.additionalInfo holds 512 characters in OCPP 2.0.1 (1024 in 2.1).
_ADDITIONAL_INFO_MAX = 512


def _status_info(reason: str | None) -> dict[str, Any] | None:
    if reason is None:
        return None
    return {
        "reasonCode": "InvalidValue" if reason not in ("ReadOnly", "WriteOnly") else reason,
        "additionalInfo": reason[:_ADDITIONAL_INFO_MAX],
    }


def _variable_result(
    item: Mapping[str, Any], attribute_type: str, outcome: AttributeResult
) -> dict[str, Any]:
    """The GetVariableResult/SetVariableResult entry for one requested variable."""
    result: dict[str, Any] = {
        "attributeStatus": outcome.status,
        "component": item["component"],
        "variable": item["variable"],
    }
    if "attributeType" in item:
        result["attributeType"] = attribute_type
    if outcome.value is not None:
        result["attributeValue"] = outcome.value[:2500]
    info = _status_info(outcome.reason)
    if info is not None:
        result["attributeStatusInfo"] = info
    return result


def get_variables(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    items = payload["getVariableData"]
    _check_items(station, items, "GetVariables")
    model = station.device_model
    results = []
    for item in items:
        attribute_type = item.get("attributeType", "Actual")
        key = model.spec.lookup(item["component"], item["variable"])
        results.append(_variable_result(item, attribute_type, model.read(key, attribute_type)))
    return Answer({"getVariableResult": results})


def set_variables(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    items = payload["setVariableData"]
    _check_items(station, items, "SetVariables")
    model = station.device_model
    results = []
    for item in items:
        attribute_type = item.get("attributeType", "Actual")
        key = model.spec.lookup(item["component"], item["variable"])
        outcome = model.write(key, item["attributeValue"], attribute_type)
        results.append(_variable_result(item, attribute_type, outcome))
    return Answer({"setVariableResult": results})


_REPORT_BASES = ("ConfigurationInventory", "FullInventory", "SummaryInventory")


def get_base_report(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    report_base = payload["reportBase"]
    if report_base not in _REPORT_BASES:
        return Answer({"status": "NotSupported"})
    request_id = payload["requestId"]

    async def send_report() -> None:
        items = list(station.device_model.report(report_base))
        per_message = station.device_model.integer(
            "DeviceDataCtrlr", "ItemsPerMessage", "GetReport"
        )
        generated_at = station.clock.timestamp()
        chunks = in_parts(items, per_message)
        for seq_no, chunk in enumerate(chunks):
            message: dict[str, Any] = {
                "requestId": request_id,
                "generatedAt": generated_at,
                "seqNo": seq_no,
                "tbc": seq_no < len(chunks) - 1,
            }
            if chunk:
                message["reportData"] = chunk
            if await station.call("NotifyReport", message, before_sync=True) is None:
                return

    return Answer({"status": "Accepted"}, then=send_report)


# -- B11-B13: Reset ----------------------------------------------------------------------------


def reset(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    if payload.get("evseId") not in (None, 0):
        return Answer(
            {
                "status": "Rejected",
                "statusInfo": {
                    "reasonCode": "UnsupportedRequest",
                    "additionalInfo": "fleetsim stations reset as a whole, not per EVSE",
                },
            }
        )
    kind = payload["type"]
    busy = station.transactions()
    if kind == "ImmediateAndResume" and busy:
        return _reset_and_resume(station, busy)
    if not busy:
        return Answer({"status": "Accepted"}, then=_reboot_after_answer(station))
    if kind == "OnIdle":
        station.block_state(BLOCK).reset_scheduled = True
        return Answer({"status": "Scheduled"})

    async def end_all_then_reboot() -> None:
        for evse in busy:
            if evse.transaction is not None:
                await end_transaction(station, evse, "ResetCommand", "ImmediateReset")
        station.reboot("RemoteReset")

    return Answer({"status": "Accepted"}, then=end_all_then_reboot)


def _reboot_after_answer(station: StationCore) -> FollowUp:
    async def reboot() -> None:
        station.reboot("RemoteReset")

    return reboot


def _reset_and_resume(station: StationCore, busy: list[Evse]) -> Answer:
    """Reset ImmediateAndResume with transactions running (B13, E17): they pause, the station
    reboots, and they resume when it is up again -- if the reboot fits in ResumptionTimeout."""
    timeout_s = station.device_model.integer("TxCtrlr", "ResumptionTimeout")
    reboot_s = station.config.reboot_s
    if timeout_s == 0:
        return refused(
            "NoResumption", "TxCtrlr.ResumptionTimeout is 0: this station resumes no transaction"
        )
    if reboot_s > timeout_s:
        return refused(
            "RebootTooLong",
            f"a reboot takes {reboot_s:g} s, longer than TxCtrlr.ResumptionTimeout "
            f"({timeout_s} s): the transactions could not be resumed",
        )

    async def pause_then_reboot() -> None:
        # The CSMS hears why the transactions pause, with the meter reading as power stops.
        station.block_state(BLOCK).resume_after_reboot = True
        for evse in busy:
            if evse.transaction is not None:
                await update_transaction(station, evse, "ResetCommand", with_meter=True)
        station.reboot("RemoteReset")

    return Answer({"status": "Accepted"}, then=pause_then_reboot)


async def _restarted(station: StationCore, event: Restarted) -> None:
    """Up again after a reboot: resume the transactions an ImmediateAndResume reset paused
    (E17: Updated, TxResumed, the same transactionId, the next seqNo); any other transaction
    that outlived the reboot ends (AbnormalCondition, Reboot).  A pending OnIdle reset has
    been done by this reboot."""
    state = station.peek_block_state(BLOCK)
    resume = False
    if state is not None:
        resume = state.resume_after_reboot
        state.resume_after_reboot = False
        state.reset_scheduled = False
    for evse in station.transactions():
        if resume:
            await _resume(station, evse, evse.id in event.powered_evse_ids)
        else:
            await end_transaction(station, evse, "AbnormalCondition", "Reboot")


async def _resume(station: StationCore, evse: Evse, was_powered: bool) -> None:
    """Resume one transaction; energy flows again if it flowed before the reboot and
    TxCtrlr.AllowEnergyTransferResumption is true, else it stays SuspendedEVSE."""
    transaction = evse.transaction
    assert transaction is not None
    charging_state = transaction.charging_state
    session = evse.session
    if was_powered and session is not None:
        if station.device_model.boolean("TxCtrlr", "AllowEnergyTransferResumption"):
            session.set_enabled(True, station.clock.sim_now())
        else:
            charging_state = "SuspendedEVSE"
    await update_transaction(
        station, evse, "TxResumed", charging_state=charging_state, with_meter=True
    )
    evse.wake()  # the EV goes on from the state it is in now


async def _reset_when_idle(station: StationCore, event: TransactionEnded) -> None:
    """An OnIdle Reset reboots the station once its last transaction has ended (B12)."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.reset_scheduled and not station.transactions():
        state.reset_scheduled = False
        station.reboot("RemoteReset")


async def _variable_changed(station: StationCore, event: VariableChanged) -> None:
    if event.key == _HEARTBEAT:
        station.block_state(BLOCK).heartbeat_alarm.wake()


# -- TriggerMessage ---------------------------------------------------------------------------


def _trigger_boot(station: StationCore, target: TriggerTarget) -> Answer:
    if station.registration == "Accepted":
        return refused("NotEnabled", "the station is already accepted")
    station.wake_boot()
    return Answer({"status": "Accepted"})


def _trigger_heartbeat(station: StationCore, target: TriggerTarget) -> Answer:
    async def send() -> None:
        await station.call("Heartbeat", {}, before_sync=True)

    return Answer({"status": "Accepted"}, then=send)


def _trigger_idle_status(action: str, station: StationCore, target: TriggerTarget) -> Answer:
    async def send() -> None:
        await station.call(action, {"status": "Idle"}, before_sync=True)

    return Answer({"status": "Accepted"}, then=send)


# -- the variables this block owns --------------------------------------------------------------


def _message_timeout(station: Any) -> str:
    return f"{station.config.message_timeout_s:.0f}"


def _clock(station: Any) -> str:
    return str(station.clock.timestamp())


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    comm = "OCPPCommCtrlr"
    yield VariableSpec(
        comm,
        "HeartbeatInterval",
        "integer",
        str(config.heartbeat_interval_s),
        unit="s",
        min_limit=1,
        max_limit=86_400,
    )
    yield VariableSpec(
        comm,
        "MessageTimeout",
        "integer",
        "",
        "ReadOnly",
        variable_instance="Default",
        unit="s",
        reader=_message_timeout,
    )
    yield VariableSpec(
        comm,
        "RetryBackOffWaitMinimum",
        "integer",
        f"{config.retry_backoff_wait_minimum_s:.0f}",
        unit="s",
        min_limit=0,
    )
    yield VariableSpec(
        comm,
        "RetryBackOffRandomRange",
        "integer",
        f"{config.retry_backoff_random_range_s:.0f}",
        unit="s",
        min_limit=0,
    )
    yield VariableSpec(
        comm,
        "RetryBackOffRepeatTimes",
        "integer",
        str(config.retry_backoff_repeat_times),
        min_limit=0,
        max_limit=20,
    )
    # One network connection profile, tried until it works: read-only facts.
    yield VariableSpec(
        comm,
        "NetworkConfigurationPriority",
        "SequenceList",
        "1",
        "ReadOnly",
        values_list=("0", "1", "2"),
    )
    yield VariableSpec(comm, "NetworkProfileConnectionAttempts", "integer", "3", "ReadOnly")
    yield VariableSpec(
        comm,
        "FileTransferProtocols",
        "MemberList",
        "HTTPS",
        "ReadOnly",
        values_list=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP"),
    )
    data = "DeviceDataCtrlr"
    for instance in ("GetReport", "GetVariables", "SetVariables"):
        yield VariableSpec(
            data, "ItemsPerMessage", "integer", "100", "ReadOnly", variable_instance=instance
        )
        yield VariableSpec(
            data, "BytesPerMessage", "integer", "65000", "ReadOnly", variable_instance=instance
        )
    if config.ocpp_version == "2.1":
        # E17: how long an interruption a transaction survives, and whether energy flows again.
        yield VariableSpec("TxCtrlr", "ResumptionTimeout", "integer", "60", unit="s", min_limit=0)
        yield VariableSpec("TxCtrlr", "AllowEnergyTransferResumption", "boolean", "true")
    yield VariableSpec("ClockCtrlr", "DateTime", "dateTime", "", "ReadOnly", reader=_clock)
    # The station keeps its own (simulated) time; it does not set it from the CSMS.
    yield VariableSpec(
        "ClockCtrlr",
        "TimeSource",
        "SequenceList",
        "RealTimeClock",
        "ReadOnly",
        values_list=(
            "Heartbeat",
            "NTP",
            "GPS",
            "RealTimeClock",
            "MobileNetwork",
            "RadioTimeTransmitter",
        ),
    )


BLOCK: Block[ProvisioningState] = Block(
    letter="B",
    name="provisioning",
    handlers={
        "GetVariables": get_variables,
        "SetVariables": set_variables,
        "GetBaseReport": get_base_report,
        "Reset": reset,
    },
    follow_ups={"GetBaseReport": ("NotifyReport",), "Reset": ("BootNotification",)},
    triggers={
        "BootNotification": _trigger_boot,
        "Heartbeat": _trigger_heartbeat,
        "FirmwareStatusNotification": functools.partial(
            _trigger_idle_status, "FirmwareStatusNotification"
        ),
        "PublishFirmwareStatusNotification": functools.partial(
            _trigger_idle_status, "PublishFirmwareStatusNotification"
        ),
    },
    variables=_variables,
    reactions={
        TransactionEnded: _reset_when_idle,
        VariableChanged: _variable_changed,
        Restarted: _restarted,
    },
    new_state=ProvisioningState,
    register=boot_until_accepted,
    online=heartbeat_forever,
)
