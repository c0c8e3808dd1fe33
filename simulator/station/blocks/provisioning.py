"""Block B, provisioning: boot, heartbeat, the device model over OCPP, and Reset.

B01-B04  BootNotification until Accepted; while Pending or Rejected nothing else is sent,
         except what the CSMS itself triggers during Pending.
B05-B07  SetVariables (with real effect), GetVariables, GetBaseReport answered by NotifyReport.
         A variable whose new value takes effect after a reboot (NetworkConfigurationPriority)
         answers RebootRequired and keeps the value in effect until the station reboots.
B08      GetReport with componentVariable and componentCriteria filters; EmptyResultSet when
         nothing matches.  Every report is cut into NotifyReport parts of at most
         DeviceDataCtrlr.ItemsPerMessage[GetReport] entries and BytesPerMessage[GetReport]
         bytes, with seqNo and tbc.
B09/B10  SetNetworkProfile stores a connection profile in a slot; after a reboot the station
         connects through the slots of NetworkConfigurationPriority in order, giving each
         NetworkProfileConnectionAttempts attempts before falling back to the next.
A05      A profile may raise the security profile (1 -> 2 -> 3: TLS, then a client
         certificate), which the station connects with after the reboot; one lower than the
         profile in use is refused.  A higher one needs what it runs on (A05.FR.02/03): for 2
         and 3 a CSMS root to verify the CSMS with, for 3 a valid ChargingStationCertificate
         of the station's own; without it both SetNetworkProfile and a
         NetworkConfigurationPriority naming the profile's slot are Rejected (MissingCertificate,
         naming the certificate).  See `_missing_certificate` for what counts as one.
         A 2.1 profile's basicAuthPassword obeys SecurityCtrlr.BasicAuthPassword's rule.
B11-B12  Reset, idle or with transactions (Immediate ends them, OnIdle waits for them).
B13/E17  Reset ImmediateAndResume (2.1): the transactions pause (an Updated event with
         triggerReason ResetCommand, then no energy while the station is down) and resume after
         the reboot with the same transactionId and the next seqNo (Updated, TxResumed), with
         energy again when TxCtrlr.AllowEnergyTransferResumption says so, else SuspendedEVSE.
         Refused while TxCtrlr.ResumptionTimeout is 0 or shorter than the reboot.  A
         transaction still running after any other reboot ends (AbnormalCondition, Reboot).

The block owns OCPPCommCtrlr's connection variables (heartbeat, retry back-off, message
timeout, network profiles), DeviceDataCtrlr, ClockCtrlr and (2.1) TxCtrlr's resumption
variables.  It provides the station's `register` hook (boot until accepted), its `online` hook
(the heartbeat) and its `network_profile` hook (which CSMS to connect to).  With
ClockCtrlr.TimeSource naming Heartbeat before RealTimeClock, the currentTime of the CSMS's
BootNotification and Heartbeat answers sets the station's clock: the fleet shares one
simulated clock, so the station keeps that clock shifted by the difference.
TriggerMessage can make it send a BootNotification (during Pending) and a Heartbeat; the status
of firmware transfers is block L's (`firmware.py`), that of log uploads block N's
(`diagnostics.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from ...clock import Alarm, SimClock
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
from ..device_model import AttributeResult, VariableKey, VariableSpec
from ..evse import Evse
from ..passwords import password_problem
from ..transaction import end_transaction, update_transaction

__all__ = ["BLOCK"]


@dataclass(slots=True)
class ProvisioningState:
    """Per station: where the heartbeat sleeps, whether a Reset waits for idle, and whether
    the reboot under way resumes the transactions (ImmediateAndResume)."""

    heartbeat_alarm: Alarm = field(default_factory=Alarm)
    reset_scheduled: bool = False
    resume_after_reboot: bool = False
    #: The network connection profiles the CSMS stored (B09), by configuration slot; a
    #: profile may hold a basicAuthPassword, so the repr leaves them out.
    network_profiles: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: The slot of the connection being tried or in use (B10).
    connecting_slot: int | None = None
    #: The fleet's clock, kept while the station runs on a clock set from the CSMS.
    own_clock: SimClock | None = None


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
            "firmwareVersion": station.firmware_version,
        },
    }


async def boot_until_accepted(station: StationCore, link: Link) -> None:
    """Send BootNotification until the CSMS accepts the station (B01-B03).

    Registration survives reconnects: a station the CSMS already accepted does not boot again
    after a network outage, only after a reboot; it is at once `accepted` again (so the
    stations gauge and the reconnect count see it back online, and lose it at the next drop).
    """
    if station.registration == "Accepted":
        station.set_state("accepted")
        return
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
            take_csms_time(station, response.get("currentTime"))
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
        response = await station.call("Heartbeat", {})
        if response is not None:
            take_csms_time(station, response.get("currentTime"))


# -- time from the CSMS -----------------------------------------------------------------------


def _time_from_csms(station: StationCore) -> bool:
    """Whether ClockCtrlr.TimeSource puts Heartbeat (the CSMS's time) before the station's own
    real-time clock."""
    sources = station.device_model.members("ClockCtrlr", "TimeSource")
    if "Heartbeat" not in sources:
        return False
    return "RealTimeClock" not in sources or (
        sources.index("Heartbeat") < sources.index("RealTimeClock")
    )


def take_csms_time(station: StationCore, current_time: Any) -> None:
    """Set the station's clock to the CSMS's `currentTime` when TimeSource says so.

    A CSMS whose currentTime cannot be read leaves the clock as it was.
    """
    if not isinstance(current_time, str) or not _time_from_csms(station):
        return
    try:
        csms_epoch_s = dt.datetime.fromisoformat(current_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return
    offset_s = csms_epoch_s - station.clock.epoch_s()
    if abs(offset_s) < 0.001:
        return
    state = station.block_state(BLOCK)
    if state.own_clock is None:
        state.own_clock = station.clock
    station.clock = station.clock.shifted(offset_s)


def _restore_own_clock(station: StationCore) -> None:
    """Back to the fleet's clock once TimeSource no longer takes the CSMS's time."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.own_clock is not None and not _time_from_csms(station):
        station.clock = state.own_clock
        state.own_clock = None


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
        refusal = _priority_refusal(station, item["attributeValue"]) if key == _PRIORITY else None
        if refusal is not None:
            reason_code, info = refusal
            rejected = AttributeResult("Rejected", reason=info)
            result = _variable_result(item, attribute_type, rejected)
            result["attributeStatusInfo"]["reasonCode"] = reason_code
            results.append(result)
            continue
        outcome = model.write(key, item["attributeValue"], attribute_type)
        results.append(_variable_result(item, attribute_type, outcome))
    return Answer({"setVariableResult": results})


_REPORT_BASES = ("ConfigurationInventory", "FullInventory", "SummaryInventory")


def get_base_report(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    report_base = payload["reportBase"]
    if report_base not in _REPORT_BASES:
        return Answer({"status": "NotSupported"})
    specs = [
        spec
        for spec in station.device_model.spec.variables
        if not (report_base == "ConfigurationInventory" and spec.mutability == "ReadOnly")
        and not (report_base == "SummaryInventory" and spec.variable != "AvailabilityState")
    ]
    return Answer({"status": "Accepted"}, then=_reporter(station, payload["requestId"], specs))


def get_report(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """A custom report (B08): the variables the componentVariable entries name, of the
    components that meet every componentCriteria; EmptyResultSet when none do."""
    wanted = payload.get("componentVariable", ())
    _check_items(station, list(wanted), "GetReport")
    model = station.device_model
    specs = model.spec.matching(wanted, payload.get("componentCriteria", ()), model.value)
    if not specs:
        return Answer({"status": "EmptyResultSet"})
    return Answer({"status": "Accepted"}, then=_reporter(station, payload["requestId"], specs))


#: Bytes of an OCPP-J CALL around its payload: `[2,"<message id>","NotifyReport",` and `]`.
_FRAME_BYTES = 64


def _reporter(station: StationCore, request_id: int, specs: Sequence[VariableSpec]) -> FollowUp:
    """What follows an accepted report request: the NotifyReport parts, the values read as
    they are sent."""

    async def send_report() -> None:
        model = station.device_model
        items = [model.report_entry(spec) for spec in specs]
        per_message = model.integer("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
        bytes_per_message = model.integer("DeviceDataCtrlr", "BytesPerMessage", "GetReport")
        generated_at = station.clock.timestamp()
        heading = {"requestId": request_id, "generatedAt": generated_at, "seqNo": len(items)}
        room_bytes = (
            bytes_per_message
            - _FRAME_BYTES
            - len(_json(heading))
            - len(',"tbc":false,"reportData":[]')
        )
        parts = report_parts(items, per_message, room_bytes)
        for seq_no, part in enumerate(parts):
            message: dict[str, Any] = {
                "requestId": request_id,
                "generatedAt": generated_at,
                "seqNo": seq_no,
                "tbc": seq_no < len(parts) - 1,
            }
            if part:
                message["reportData"] = list(part)
            if await station.call("NotifyReport", message, before_sync=True) is None:
                return

    return send_report


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def report_parts(
    items: Sequence[dict[str, Any]], per_message: int, room_bytes: int
) -> list[Sequence[dict[str, Any]]]:
    """`items` in parts of at most `per_message` entries whose JSON fits in `room_bytes`
    (an entry larger than that on its own goes alone: it cannot be cut)."""
    parts: list[Sequence[dict[str, Any]]] = []
    for counted in in_parts(items, max(per_message, 1)):
        start = 0
        used = 0
        for index, item in enumerate(counted):
            size = len(_json(item)) + (1 if index > start else 0)
            if index > start and used + size > room_bytes:
                parts.append(counted[start:index])
                start, used = index, size - 1
            else:
                used += size
        parts.append(counted[start:])
    return parts


# -- B09/B10: network connection profiles ------------------------------------------------------

_COMM = "OCPPCommCtrlr"
_PRIORITY: VariableKey = (_COMM, None, None, None, "NetworkConfigurationPriority", None)
#: The configuration slots a station has; slot 1 holds the CSMS of the scenario.
_SLOTS = ("0", "1", "2")
_SCENARIO_SLOT = 1


def _priority_refusal(station: StationCore, value: str) -> tuple[str, str] | None:
    """Why NetworkConfigurationPriority cannot be `value`, as (reasonCode, additionalInfo): a
    slot it lists holds no profile, or a profile with a higher security profile than the one
    in use that the station lacks the certificates for (A05.FR.02/03: they may have been
    deleted since SetNetworkProfile)."""
    state = station.peek_block_state(BLOCK)
    profiles = state.network_profiles if state is not None else {}
    for member in value.split(","):
        if not member.isdigit() or int(member) == _SCENARIO_SLOT:
            continue
        profile = profiles.get(int(member))
        if profile is None:
            return (
                "InvalidValue",
                f"slot {member} holds no network profile; send SetNetworkProfile for it first",
            )
        missing = _missing_certificate(station, int(profile["securityProfile"]))
        if missing is not None:
            return "MissingCertificate", f"slot {member}: {missing}"
    return None


def set_network_profile(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Store a network connection profile in a slot (B09); it is used once
    NetworkConfigurationPriority lists the slot and the station has rebooted (B10)."""
    slot = payload["configurationSlot"]
    data = payload["connectionData"]
    if str(slot) not in _SLOTS:
        return refused(
            "InvalidValue",
            f"configurationSlot {slot} is not a slot of this station ({', '.join(_SLOTS)})",
        )
    state = station.block_state(BLOCK)
    active = state.connecting_slot if state.connecting_slot is not None else _SCENARIO_SLOT
    if slot == active:
        return refused(
            "InvalidValue",
            f"the station is connected through slot {slot}; store the new profile in another "
            "slot and list it in OCPPCommCtrlr.NetworkConfigurationPriority",
        )
    problem = _profile_problem(station, data)
    if problem is not None:
        return refused("InvalidValue", problem)
    missing = _missing_certificate(station, int(data["securityProfile"]))
    if missing is not None:
        return refused("MissingCertificate", missing)
    state.network_profiles[slot] = dict(data)
    return Answer({"status": "Accepted"})


def _profile_problem(station: StationCore, data: Mapping[str, Any]) -> str | None:
    """Why the station could not connect with the profile `data` as it says, or None."""
    if data.get("ocppTransport", "JSON") != "JSON":
        return "fleetsim stations speak OCPP-J (JSON) only"
    if station.config.ocpp_version == "2.0.1" and data.get("ocppVersion") != "OCPP20":
        return "this station speaks OCPP 2.0.1 (ocppVersion OCPP20)"
    url = str(data["ocppCsmsUrl"])
    if not url.startswith(("ws://", "wss://")):
        return f"ocppCsmsUrl {url[:200]!r} is not a ws:// or wss:// URL"
    profile = data["securityProfile"]
    current = _security_profile_in_use(station)
    if profile < current:
        # A05: a station never lowers its security profile.
        return (
            f"securityProfile {profile} is lower than the one in use ({current}); a station "
            "never downgrades its security"
        )
    if profile not in (1, 2, 3):
        return f"securityProfile {profile} is not one of the OCPP profiles 1, 2 and 3"
    if profile >= 2 and not url.startswith("wss://"):
        return f"securityProfile {profile} runs over TLS, so ocppCsmsUrl must be wss://"
    timeout_s = data.get("messageTimeout")
    if timeout_s is not None and timeout_s != round(station.config.message_timeout_s):
        return (
            f"messageTimeout {timeout_s} s differs from this station's "
            f"{station.config.message_timeout_s:.0f} s, which a profile cannot change"
        )
    identity = data.get("identity")
    if identity is not None and identity != station.id:
        return f"the station's identity is {station.id}, not {identity[:48]}"
    password = data.get("basicAuthPassword")
    if password is not None:
        return password_problem(password, "basicAuthPassword")
    return None


def _missing_certificate(station: StationCore, profile: int) -> str | None:
    """What the station lacks to connect with security profile `profile`, or None: nothing
    for a profile no higher than the one in use (A05.FR.02/03 ask only of an upgrade).

    Profiles 2 and 3 need a CSMS root to verify the CSMS's TLS certificate with.  In fleetsim
    that trust anchor is any of: a CSMSRootCertificate valid now in the station's store (M05
    InstallCertificate); the CA of the scenario (csms.security.ca_file), which the stations
    verify the CSMS with; or, on a connection that already runs over TLS (profile 2 or 3 in
    use), the CA that connection was verified with (the scenario's, the embedded CSMS's or the
    system's).  Profile 3 also needs a ChargingStationCertificate of the station's own, valid
    now, which CertificateSigned installed (A02/A03).  The scenario's client certificate
    does not count here: a scenario may give one only to stations on profile 3 already, and
    those have no higher profile to go to.
    """
    current = _security_profile_in_use(station)
    if profile <= current:
        return None
    if not (
        current >= 2
        or station.config.trusts_scenario_ca
        or station.holds_certificate("CSMSRootCertificate")
    ):
        return (
            f"securityProfile {profile} needs a CSMSRootCertificate to verify the CSMS with, and "
            "the station has none valid; install one (InstallCertificate) first"
        )
    if profile == 3 and not station.holds_certificate("ChargingStationCertificate"):
        return (
            "securityProfile 3 needs a valid ChargingStationCertificate of the station's own, "
            "and it has none; have it signed first (TriggerMessage "
            "SignChargingStationCertificate, then CertificateSigned)"
        )
    return None


def _security_profile_in_use(station: StationCore) -> int:
    """The security profile of the connection in use: its network profile's, else the
    scenario's (SecurityCtrlr.SecurityProfile says the same)."""
    profile = station.connection_profile
    if profile is not None:
        return int(profile.get("securityProfile", station.security_profile))
    return station.security_profile


def _network_profile(station: StationCore, failures: int) -> Mapping[str, Any] | None:
    """The profile to connect with after `failures` failed attempts in a row (B10): the slots
    of NetworkConfigurationPriority in order, NetworkProfileConnectionAttempts attempts each,
    then round again.  None: the scenario's CSMS (slot 1 unless a profile replaced it)."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.network_profiles:
        return None
    model = station.device_model
    profiles = state.network_profiles
    slots = [
        int(member)
        for member in model.members("OCPPCommCtrlr", "NetworkConfigurationPriority")
        if int(member) in profiles or int(member) == _SCENARIO_SLOT
    ] or [_SCENARIO_SLOT]
    attempts = max(1, model.integer("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"))
    slot = slots[(failures // attempts) % len(slots)]
    state.connecting_slot = slot
    return profiles.get(slot)


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
    that outlived the reboot ends (AbnormalCondition, Reboot).  After a power cut (the station
    boots with reason PowerUp) an OCPP 2.1 station resumes its transactions as E17 says; 2.0.1
    has no TxResumed, so they end with stoppedReason PowerLoss.  A pending OnIdle reset has
    been done by this reboot.  Values set with RebootRequired take effect first."""
    station.device_model.apply_pending()  # values that wait for a reboot take effect now
    state = station.peek_block_state(BLOCK)
    power_lost = station.boot_reason == "PowerUp"
    resume = power_lost and station.config.ocpp_version != "2.0.1"
    if state is not None:
        resume = resume or state.resume_after_reboot
        state.resume_after_reboot = False
        state.reset_scheduled = False
    for evse in station.transactions():
        if resume:
            await _resume(station, evse, evse.id in event.powered_evse_ids)
        else:
            reason = "PowerLoss" if power_lost else "Reboot"
            await end_transaction(station, evse, "AbnormalCondition", reason)


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


def _reset_when_idle(station: StationCore, event: TransactionEnded) -> None:
    """An OnIdle Reset reboots the station once its last transaction has ended (B12)."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.reset_scheduled and not station.transactions():
        state.reset_scheduled = False
        station.reboot("RemoteReset")


_TIME_SOURCE: VariableKey = ("ClockCtrlr", None, None, None, "TimeSource", None)


async def _variable_changed(station: StationCore, event: VariableChanged) -> None:
    if event.key == _HEARTBEAT:
        station.block_state(BLOCK).heartbeat_alarm.wake()
    elif event.key == _TIME_SOURCE:
        _restore_own_clock(station)


# -- TriggerMessage ---------------------------------------------------------------------------


def _trigger_boot(station: StationCore, target: TriggerTarget) -> Answer:
    if station.registration == "Accepted":
        return refused("NotEnabled", "the station is already accepted")
    station.wake_boot()
    return Answer({"status": "Accepted"})


def _trigger_heartbeat(station: StationCore, target: TriggerTarget) -> Answer:
    async def send() -> None:
        response = await station.call("Heartbeat", {}, before_sync=True)
        if response is not None:
            take_csms_time(station, response.get("currentTime"))

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
    # B10: the slots the station connects through, in order, from its next reboot on.
    yield VariableSpec(
        comm,
        "NetworkConfigurationPriority",
        "SequenceList",
        str(_SCENARIO_SLOT),
        values_list=_SLOTS,
        reboot_required=True,
    )
    yield VariableSpec(
        comm, "NetworkProfileConnectionAttempts", "integer", "3", min_limit=1, max_limit=100
    )
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
        # A scenario may set these: the station cuts reports and refuses requests by them.
        yield VariableSpec(
            data,
            "ItemsPerMessage",
            "integer",
            "100",
            "ReadOnly",
            variable_instance=instance,
            min_limit=1,
            configurable=True,
        )
        yield VariableSpec(
            data,
            "BytesPerMessage",
            "integer",
            "65000",
            "ReadOnly",
            variable_instance=instance,
            min_limit=1024,
            configurable=instance == "GetReport",
        )
    if config.ocpp_version == "2.1":
        # E17: how long an interruption a transaction survives, and whether energy flows again.
        yield VariableSpec("TxCtrlr", "ResumptionTimeout", "integer", "60", unit="s", min_limit=0)
        yield VariableSpec("TxCtrlr", "AllowEnergyTransferResumption", "boolean", "true")
    yield VariableSpec("ClockCtrlr", "DateTime", "dateTime", "", "ReadOnly", reader=_clock)
    # The station keeps its own (simulated) time, or takes the CSMS's with Heartbeat first.
    yield VariableSpec(
        "ClockCtrlr",
        "TimeSource",
        "SequenceList",
        "RealTimeClock",
        values_list=("Heartbeat", "RealTimeClock"),
    )


BLOCK: Block[ProvisioningState] = Block(
    letter="B",
    name="provisioning",
    handlers={
        "GetVariables": get_variables,
        "SetVariables": set_variables,
        "GetBaseReport": get_base_report,
        "GetReport": get_report,
        "SetNetworkProfile": set_network_profile,
        "Reset": reset,
    },
    follow_ups={
        "GetBaseReport": ("NotifyReport",),
        "GetReport": ("NotifyReport",),
        "Reset": ("BootNotification",),
    },
    triggers={
        "BootNotification": _trigger_boot,
        "Heartbeat": _trigger_heartbeat,
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
    network_profile=_network_profile,
)
