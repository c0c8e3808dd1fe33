"""What an EV tells the station about its energy needs, as OCPP's `chargingNeeds` object.

An ISO 15118 EV reports its needs at the start of charging and the station forwards them in a
NotifyEVChargingNeedsRequest.  OCPP 2.1 carries the ISO 15118-20 form in
`v2xChargingParameters` (power window, energy requests, target SoC) with a control mode; an EV
that speaks only ISO 15118-2, and every EV under OCPP 2.0.1, sends the older
`acChargingParameters` (currents, voltage, energy) or `dcChargingParameters` (current, voltage,
power, capacity, SoC) instead.  Field names and types follow the `ocpp` package's schemas; in
2.0.1 those parameters are integers, so they are rounded.

Energy requests are battery-side energies, as ISO 15118-20 defines them.  AC currents assume the
nominal phase voltage and the 6 A minimum of IEC 61851-1.  The EV's figures come from the
catalogue (`ev_models`); turning them into OCPP is the station's business, so it is done here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from fleetsim.ev_models import EvArrival, EvModel

from ..clock import format_timestamp
from ..ocpp import OcppVersion
from .evse import NOMINAL_PHASE_VOLTAGE_V

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "charging_needs",
    "contract_certificate_chain",
    "contract_certificate_request",
    "pick_schedule",
]

#: The smallest AC charging current IEC 61851-1 signals.
MIN_AC_CURRENT_A = 6


def charging_needs(
    arrival: EvArrival,
    now_epoch_s: float,
    *,
    supply: Literal["AC", "DC"] | str,
    evse_max_w: float,
    ocpp_version: OcppVersion | str,
    now_s: float | None = None,
    soc: float | None = None,
    timestamp: Callable[[float], str] = format_timestamp,
) -> dict[str, Any]:
    """The `chargingNeeds` of `arrival`'s EV on an EVSE of `supply` rated `evse_max_w`.

    `now_s` (simulated seconds) and `soc` say when and at what charge the EV reports; they
    default to its arrival, when EVs report.  `now_epoch_s` is the wall-clock time of `now_s`,
    which places the departure time.
    """
    if supply not in ("AC", "DC"):
        raise ValueError(f"supply must be 'AC' or 'DC', got {supply!r}")
    if ocpp_version not in ("2.1", "2.0.1"):
        raise ValueError(f"ocpp_version must be '2.1' or '2.0.1', got {ocpp_version!r}")
    model = arrival.model
    if supply == "AC" and model.max_ac_w <= 0:
        raise ValueError(f"EV model {model.name!r} has no AC inlet; it cannot charge on AC")
    now_s = arrival.arrival_s if now_s is None else now_s
    soc = arrival.soc_start if soc is None else soc
    departure_epoch_s = now_epoch_s + max(0.0, arrival.departure_s - now_s)
    needs: dict[str, Any] = {
        "requestedEnergyTransfer": _requested_mode(model, supply, ocpp_version),
        "departureTime": timestamp(departure_epoch_s),
    }
    if ocpp_version == "2.1" and arrival.uses_iso15118_20:
        needs["availableEnergyTransfer"] = _available_modes(model)
        if model.bidirectional:
            needs["controlMode"] = "DynamicControl"
            needs["mobilityNeedsMode"] = "EVCC"
        else:
            needs["controlMode"] = "ScheduledControl"
        needs["v2xChargingParameters"] = _v2x_parameters(arrival, soc, supply, evse_max_w)
    elif supply == "AC":
        needs["acChargingParameters"] = _ac_parameters(arrival, soc)
    else:
        needs["dcChargingParameters"] = _dc_parameters(arrival, soc)
    return needs


def _ac_mode(model: EvModel) -> str:
    return "AC_three_phase" if model.ac_phases == 3 else "AC_single_phase"


def _requested_mode(model: EvModel, supply: str, ocpp_version: str) -> str:
    bidirectional = model.bidirectional and ocpp_version == "2.1"
    if supply == "AC":
        return "AC_BPT" if bidirectional else _ac_mode(model)
    return "DC_BPT" if bidirectional else "DC"


def _available_modes(model: EvModel) -> list[str]:
    modes: list[str] = []
    if model.max_ac_w > 0:
        modes.append(_ac_mode(model))
        if model.bidirectional:
            modes.append("AC_BPT")
    modes.append("DC")
    if model.bidirectional:
        modes.append("DC_BPT")
    return modes


def _energy_to_wh(model: EvModel, from_soc: float, to_soc: float) -> float:
    return (to_soc - from_soc) * model.usable_battery_wh


def _v2x_parameters(
    arrival: EvArrival, soc: float, supply: str, evse_max_w: float
) -> dict[str, Any]:
    model = arrival.model
    if supply == "AC":
        ev_max_w = model.max_ac_w
        min_w = float(MIN_AC_CURRENT_A * NOMINAL_PHASE_VOLTAGE_V * model.ac_phases)
    else:
        ev_max_w = model.max_dc_w
        min_w = 0.0
    max_charge_w = min(ev_max_w, evse_max_w)
    parameters: dict[str, Any] = {
        "minChargePower": min(min_w, max_charge_w),
        "maxChargePower": max_charge_w,
        "evTargetEnergyRequest": round(max(0.0, _energy_to_wh(model, soc, arrival.target_soc))),
        "evMaxEnergyRequest": round(max(0.0, _energy_to_wh(model, soc, 1.0))),
        "targetSoC": round(arrival.target_soc * 100),
    }
    to_min_wh = _energy_to_wh(model, soc, arrival.min_soc)
    if model.bidirectional:
        max_discharge_w = min(model.max_discharge_w, evse_max_w)
        parameters.update(
            minDischargePower=min(min_w, max_discharge_w),
            maxDischargePower=max_discharge_w,
            # Negative: the EV may give this much before it reaches its minimum SoC.
            evMinEnergyRequest=round(to_min_wh),
            evMinV2XEnergyRequest=round(to_min_wh),
            evMaxV2XEnergyRequest=round(max(0.0, _energy_to_wh(model, soc, 1.0))),
        )
    else:
        parameters["evMinEnergyRequest"] = round(max(0.0, to_min_wh))
    return parameters


def _ac_parameters(arrival: EvArrival, soc: float) -> dict[str, Any]:
    model = arrival.model
    return {
        "energyAmount": round(max(0.0, _energy_to_wh(model, soc, arrival.target_soc))),
        "evMinCurrent": MIN_AC_CURRENT_A,
        "evMaxCurrent": max(
            MIN_AC_CURRENT_A, round(model.max_ac_w / (NOMINAL_PHASE_VOLTAGE_V * model.ac_phases))
        ),
        "evMaxVoltage": round(NOMINAL_PHASE_VOLTAGE_V),
    }


def _dc_parameters(arrival: EvArrival, soc: float) -> dict[str, Any]:
    model = arrival.model
    return {
        # The peak power at the highest voltage gives a lower bound on the current (an
        # estimate: real packs reach their peak current at a lower voltage).
        "evMaxCurrent": round(model.max_dc_w / model.dc_max_voltage_v),
        "evMaxVoltage": round(model.dc_max_voltage_v),
        "evMaxPower": round(model.max_dc_w),
        "evEnergyCapacity": round(model.usable_battery_wh),
        "energyAmount": round(max(0.0, _energy_to_wh(model, soc, arrival.target_soc))),
        "stateOfCharge": round(min(1.0, max(0.0, soc)) * 100),
        "fullSoC": 100,
        "bulkSoC": round(_knee_soc(model) * 100),
    }


def _knee_soc(model: EvModel) -> float:
    """Where the DC curve first drops below its peak: ISO 15118-2's bulk SoC."""
    peak_w = model.dc_curve[0][1]
    for soc, power_w in model.dc_curve:
        if power_w < peak_w:
            return soc
    return 1.0


def pick_schedule(schedules: Sequence[Mapping[str, Any]], evse_max_w: float) -> Mapping[str, Any]:
    """The chargingSchedule an ISO 15118 EV picks among those of a TxProfile (2.1: up to 3,
    K15/K18): the one that lets it take the most energy in its first hour -- each period's
    limit capped at the EVSE's rating, amperes counted at the nominal voltage on three
    phases -- the first on a tie.  The EV reports its pick in NotifyEVChargingSchedule
    (`selectedChargingScheduleId`, 2.1)."""
    if not schedules:
        raise ValueError("a TxProfile has at least one chargingSchedule")

    def first_hour_wh(schedule: Mapping[str, Any]) -> float:
        in_watts = schedule.get("chargingRateUnit", "W") == "W"
        factor = 1.0 if in_watts else 3 * NOMINAL_PHASE_VOLTAGE_V
        periods = sorted(schedule["chargingSchedulePeriod"], key=lambda p: p["startPeriod"])
        energy_wh = 0.0
        for index, period in enumerate(periods):
            start_s = min(float(period["startPeriod"]), 3600.0)
            end_s = (
                min(float(periods[index + 1]["startPeriod"]), 3600.0)
                if index + 1 < len(periods)
                else 3600.0
            )
            limit = period.get("limit", period.get("setpoint"))
            power_w = evse_max_w if limit is None else min(float(limit) * factor, evse_max_w)
            energy_wh += max(power_w, 0.0) * (end_s - start_s) / 3600.0
        return energy_wh

    best = schedules[0]
    best_wh = first_hour_wh(best)
    for schedule in schedules[1:]:
        energy_wh = first_hour_wh(schedule)
        if energy_wh > best_wh:
            best, best_wh = schedule, energy_wh
    return best


# -- Plug & Charge: the contract certificate, without EXI ------------------------------------

#: The schema an ISO 15118-20 EV names when it asks for its contract certificate.
ISO15118_20_SCHEMA = "urn:iso:std:iso:15118:-20:CommonMessages"
ISO15118_2_SCHEMA = "urn:iso:15118:2:2013:MsgDef"


def contract_certificate_request(key: ec.EllipticCurvePrivateKey, emaid: str) -> str:
    """The `exiRequest` of a Get15118EVCertificate for a new contract key.

    fleetsim does not encode EXI: in place of the EXI CertificateInstallationReq it sends the
    base64 of a DER PKCS#10 request for the EV's contract key, its CN the eMAID (the embedded
    CSMS answers it with `contract_certificate_chain`'s input).
    """
    # Imported here: only Plug & Charge EVs need X.509, and the library costs every process
    # that loads it about 12 MB.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ..pki import certificate_signing_request

    pem = certificate_signing_request(key, emaid, None)
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode()


def contract_certificate_chain(exi_response: str) -> str:
    """The PEM contract certificate chain in an `exiResponse` (fleetsim's stand-in for the EXI
    CertificateInstallationRes: the base64 of the PEM chain); ValueError if it is not one."""
    try:
        return base64.b64decode(exi_response, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"the exiResponse is not fleetsim's base64 PEM chain: {exc}") from None
