"""`Responses`: the embedded CSMS's answer to every station-initiated action of OCPP 2.1/2.0.1.

The answers are those of a permissive CSMS with no back office behind it, chosen so that station
code can run every use case to its end:

    BootNotification            the boot policy's status; interval = heartbeat interval when
                                Accepted, else the policy's retry interval (B01-B03)
    Heartbeat                   currentTime
    Authorize                   Accepted when the idToken is accepted (see `CsmsConfig`), else
                                Unknown, with `charging_priority` for `priority_share` of the
                                accepted tokens; certificateStatus Accepted when the request
                                carries a certificate or its hash data (C07)
    TransactionEvent            idTokenInfo, decided as for Authorize, when the request carries
                                an idToken (E01-E07), or Invalid for `deauthorize_share` of the
                                transactions (E05); else nothing
    DataTransfer                Accepted for a configured vendorId, else UnknownVendorId (P01)
    SignCertificate, Get15118EVCertificate, GetCertificateStatus, GetCertificateChainStatus
                                as a certificate authority: `certificates.py`
    NotifyEVChargingNeeds       NoChargingProfile (2.1) / Rejected (2.0.1): this CSMS computes
                                no schedules, and says so rather than promise one (K15-K17);
                                Accepted for a bidirectional EV's needs when it steers them
                                (`steers_bidirectional_evs`) and their EVSE has a transaction
    NotifyEVChargingSchedule, OpenPeriodicEventStream   Accepted
    VatNumberValidation         Accepted, with the company registered under it, for a number
                                that looks like an EU VAT number (two letters, then 2-13
                                letters and digits); else Rejected, with a reasonCode (C18)
    PullDynamicScheduleUpdate   Accepted with the values this CSMS last set or sent for the
                                Dynamic profile (K28), or, for a profile whose values follow a
                                rule (`CsmsConfig.dynamic_values`), the rule's values now;
                                Rejected, InvalidProfile, for a profile it never set
    everything else             an empty payload, all their response schemas require

A test that needs another answer sets `CsmsConfig.response_overrides`.
NotifyPeriodicEventStream is a SEND and gets no answer at all.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ..clock import format_timestamp
from ..ocpp import ErrorCode, RpcError
from .certificates import CertificateServices
from .policy import BootPolicy, CsmsConfig
from .state import StationState

__all__ = ["ANSWERED_ACTIONS", "Responses", "running_transaction_id", "wants_v2x"]

Responder = Callable[[StationState, Mapping[str, Any]], Mapping[str, Any]]

#: Actions whose answer is an empty payload: notifications the CSMS takes note of.
_EMPTY_ANSWER_ACTIONS = frozenset(
    {
        "BatterySwap",
        "ClearedChargingLimit",
        "ClosePeriodicEventStream",
        "FirmwareStatusNotification",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "NotifyDisplayMessages",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyPriorityCharging",
        "NotifyReport",
        "NotifySettlement",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReportDERControl",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "StatusNotification",
    }
)


_ACCEPTED: Mapping[str, Any] = {"status": "Accepted"}
_ID_TOKEN_ACCEPTED: Mapping[str, Any] = {"status": "Accepted"}
_ID_TOKEN_UNKNOWN: Mapping[str, Any] = {"status": "Unknown"}
_TRANSACTION_DEAUTHORIZED: Mapping[str, Any] = {"idTokenInfo": {"status": "Invalid"}}
# Shared by every empty answer; it is only ever serialised, never changed.
_EMPTY: Mapping[str, Any] = {}


class Responses:
    """Builds answers from one `CsmsConfig` and clock; the table is built once per CSMS."""

    __slots__ = (
        "_accepted_id_tokens",
        "_boot_policy",
        "_clock",
        "_deauthorize_below",
        "_dynamic_values",
        "_heartbeat_interval_s",
        "_prioritized",
        "_priority_below",
        "_table",
        "_vendor_ids",
        "certificates",
    )

    def __init__(
        self,
        config: CsmsConfig,
        clock: Callable[[], float],
        certificates: CertificateServices | None = None,
    ) -> None:
        self._clock = clock
        #: The CSMS's certificate authority and its answers (`certificates.py`).
        self.certificates = certificates or CertificateServices(clock=clock)
        self._heartbeat_interval_s = config.heartbeat_interval_s
        self._boot_policy: BootPolicy = config.boot_policy
        self._accepted_id_tokens: frozenset[str] | None = (
            None
            if config.accepted_id_tokens is None
            else frozenset(token.casefold() for token in config.accepted_id_tokens)
        )
        self._vendor_ids = frozenset(config.data_transfer_vendor_ids)
        self._dynamic_values = dict(config.dynamic_values)
        #: crc32 values (of 2**32) below which a transaction is deauthorized.
        self._deauthorize_below = round(config.deauthorize_share * 2**32)
        #: crc32 values (of 2**32) of a case-folded idToken below which it has a priority.
        self._priority_below = round(config.priority_share * 2**32)
        self._prioritized: Mapping[str, Any] = {
            "status": "Accepted",
            "chargingPriority": config.charging_priority,
        }
        table: dict[str, Responder] = dict(_STATIC_RESPONDERS)
        for action, method_name in _CONFIGURED_RESPONDERS.items():
            table[action] = getattr(self, method_name)
        table.update(self.certificates.responders())
        if config.steers_bidirectional_evs:
            table["NotifyEVChargingNeeds"] = _notify_ev_charging_needs_steered
        for action, override in config.response_overrides.items():
            table[action] = _wrap_override(override)
        self._table = table

    def answer(
        self, station: StationState, action: str, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The response payload to a valid request; `station` has already recorded it.

        Raises `RpcError` for an action this CSMS has no answer to (the session lets only
        station-initiated actions through, so that is a gap in the table) or when an override
        refuses the request.
        """
        responder = self._table.get(action)
        if responder is None:
            raise RpcError(ErrorCode.NOT_SUPPORTED, f"the embedded CSMS has no answer to {action}")
        return responder(station, payload)

    def _now(self) -> str:
        return format_timestamp(self._clock())

    def id_token_info(self, id_token: Mapping[str, Any]) -> Mapping[str, Any]:
        """What this CSMS says of `id_token` (an IdTokenType): the idTokenInfo of its
        Authorize answers, which a local list it pushes carries too."""
        accepted = self._accepted_id_tokens
        if (
            accepted is None
            or id_token["type"] == "NoAuthorization"
            or id_token["idToken"].casefold() in accepted
        ):
            if self._priority_below and self._ranked(id_token):
                return self._prioritized
            return _ID_TOKEN_ACCEPTED
        return _ID_TOKEN_UNKNOWN

    def _ranked(self, id_token: Mapping[str, Any]) -> bool:
        """Whether this token is one of the `priority_share` the CSMS gives a chargingPriority:
        a hash of the case-folded idToken, so a driver keeps their rank."""
        value = str(id_token["idToken"]).casefold()
        return zlib.crc32(value.encode()) < self._priority_below

    # -- the responders that depend on the configuration --------------------------------

    def _boot_notification(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        decision = self._boot_policy(station.station_id, station.boots)
        accepted = decision.status == "Accepted"
        return {
            "currentTime": self._now(),
            "interval": self._heartbeat_interval_s if accepted else decision.retry_interval_s,
            "status": decision.status,
        }

    def _heartbeat(self, station: StationState, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"currentTime": self._now()}

    def _authorize(self, station: StationState, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        response: dict[str, Any] = {"idTokenInfo": self.id_token_info(payload["idToken"])}
        if "certificate" in payload or "iso15118CertificateHashData" in payload:
            response["certificateStatus"] = "Accepted"
        return response

    def _transaction_event(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        id_token = payload.get("idToken")
        if id_token is None:
            return _EMPTY
        if self._deauthorize_below and self._deauthorized(payload):
            return _TRANSACTION_DEAUTHORIZED
        return {"idTokenInfo": self.id_token_info(id_token)}

    def _deauthorized(self, payload: Mapping[str, Any]) -> bool:
        """Whether this transaction is one of the `deauthorize_share` the CSMS refuses: a hash
        of its id, so every event of it gets the same answer and a run is reproducible."""
        transaction_id = str(payload["transactionInfo"]["transactionId"])
        return zlib.crc32(transaction_id.encode()) < self._deauthorize_below

    def _data_transfer(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        if payload["vendorId"] in self._vendor_ids:
            return _ACCEPTED
        return {"status": "UnknownVendorId"}

    def _pull_dynamic_schedule_update(
        self, station: StationState, payload: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        profile_id = payload["chargingProfileId"]
        kept = (station.dynamic_schedules or {}).get(profile_id)
        if kept is None:
            return {
                "status": "Rejected",
                "statusInfo": {
                    "reasonCode": "InvalidProfile",
                    "additionalInfo": f"this CSMS set no Dynamic charging profile {profile_id}",
                },
            }
        rule = self._dynamic_values.get(profile_id)
        if rule is not None:
            # The values in force now; kept, as an update the station takes in with the answer.
            update = {"chargingProfileId": profile_id, "scheduleUpdate": rule(self._clock())}
            station.remember_dynamic_schedule("UpdateDynamicSchedule", update)
            kept = (station.dynamic_schedules or {}).get(profile_id, kept)
        return {"status": "Accepted", "scheduleUpdate": dict(kept)}


# -- the responders that depend on nothing but the request --------------------------------


def _empty(station: StationState, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _EMPTY


def _accepted(station: StationState, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _ACCEPTED


def _notify_ev_charging_needs(
    station: StationState, payload: Mapping[str, Any]
) -> Mapping[str, Any]:
    # OCPP 2.0.1 has no NoChargingProfile; Rejected is its way of saying no schedule follows.
    if station.version == "2.0.1":
        return {"status": "Rejected"}
    return {"status": "NoChargingProfile"}


def wants_v2x(needs_request: Mapping[str, Any]) -> bool:
    """Whether a NotifyEVChargingNeeds asks for a bidirectional (`_BPT`) energy transfer."""
    mode = needs_request["chargingNeeds"].get("requestedEnergyTransfer", "")
    return str(mode).endswith("_BPT")


def running_transaction_id(station: StationState, evse_id: int) -> str | None:
    """The transaction running on `evse_id` as the station's TransactionEvents told: the last
    one started there that has not ended."""
    for record in reversed(list(station.transactions.values())):
        if record.evse_id == evse_id and not record.ended:
            return record.transaction_id
    return None


def _notify_ev_charging_needs_steered(
    station: StationState, payload: Mapping[str, Any]
) -> Mapping[str, Any]:
    if wants_v2x(payload) and running_transaction_id(station, payload["evseId"]) is not None:
        return _ACCEPTED
    return _notify_ev_charging_needs(station, payload)


#: What an EU VAT number looks like: the country's two letters, then 2 to 13 letters and digits.
_VAT_NUMBER = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}$")


def _vat_number_validation(station: StationState, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """This CSMS has no tax register: a number that looks valid belongs to a company it makes
    up from the number, any other is refused."""
    vat_number = str(payload["vatNumber"])
    response: dict[str, Any] = {"vatNumber": vat_number}
    if _VAT_NUMBER.fullmatch(vat_number.replace(" ", "").upper()):
        response["status"] = "Accepted"
        response["company"] = {
            "name": f"Company {vat_number}"[:50],
            "address1": "1 Main Street",
            "city": "Amsterdam",
            "country": "Netherlands",
        }
    else:
        response["status"] = "Rejected"
        response["statusInfo"] = {
            "reasonCode": "InvalidValue",
            "additionalInfo": "not a VAT number: two letters, then 2 to 13 letters and digits",
        }
    if "evseId" in payload:
        response["evseId"] = payload["evseId"]
    return response


def _wrap_override(
    override: Callable[[str, Mapping[str, Any]], Mapping[str, Any]],
) -> Responder:
    def respond(station: StationState, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return override(station.station_id, payload)

    return respond


#: Responders that depend on the request alone, by action.
_STATIC_RESPONDERS: dict[str, Responder] = {
    **dict.fromkeys(_EMPTY_ANSWER_ACTIONS, _empty),
    "NotifyEVChargingNeeds": _notify_ev_charging_needs,
    "NotifyEVChargingSchedule": _accepted,
    "OpenPeriodicEventStream": _accepted,
    "VatNumberValidation": _vat_number_validation,
}

#: Responders that read the configuration or the clock: `Responses` methods, by action.
_CONFIGURED_RESPONDERS: dict[str, str] = {
    "Authorize": "_authorize",
    "BootNotification": "_boot_notification",
    "DataTransfer": "_data_transfer",
    "Heartbeat": "_heartbeat",
    "PullDynamicScheduleUpdate": "_pull_dynamic_schedule_update",
    "TransactionEvent": "_transaction_event",
}

#: Every action `Responses` answers by default: all station-initiated CALLs of OCPP 2.1.
ANSWERED_ACTIONS: frozenset[str] = (
    frozenset(_STATIC_RESPONDERS)
    | frozenset(_CONFIGURED_RESPONDERS)
    | frozenset(CertificateServices().responders())
)
