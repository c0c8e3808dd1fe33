"""The components of the three-tier model in the device model: ChargingStation, EVSE, Connector.

These belong to the station itself rather than to a block; the controllers (OCPPCommCtrlr,
TxCtrlr, AuthCtrlr, ...) are declared by the blocks that act on them.  AvailabilityState is
read live from the station, so it can never disagree with what the station reports.

The physical variables a CSMS reads follow the simulation: an EVSE's Power is the power its EV
draws now (Actual; MaxSet is the EVSE's rating), the station's Power is their sum, and Voltage
is the nominal phase voltage of the supply, which is what the meter values report too.  No
temperature is offered: the simulation has no thermal model, and a made-up reading would be a
value nothing simulates.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .device_model import VariableSpec
from .evse import NOMINAL_PHASE_VOLTAGE_V

if TYPE_CHECKING:
    from .config import StationConfig

__all__ = ["component_variables", "decimal_text"]


def _station_state(station: Any) -> str:
    return str(station.availability_state())


def _evse_state(evse_id: int, station: Any) -> str:
    return str(station.evse_state(evse_id))


def _connector_status(evse_id: int, connector_id: int, station: Any) -> str:
    return str(station.connector_status(evse_id, connector_id))


def _evse_power(evse_id: int, station: Any) -> str:
    return decimal_text(station.evse(evse_id).power_w)


def _station_power(station: Any) -> str:
    return decimal_text(sum(evse.power_w for evse in station.evses))


def decimal_text(value: float) -> str:
    """A decimal as OCPP text, without an exponent: 22000, 7400.5."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


def component_variables(config: StationConfig) -> list[VariableSpec]:
    """The ChargingStation, EVSE and Connector variables of a station built from `config`."""
    variables: list[VariableSpec] = []
    add = variables.append
    phases = max(evse.phases for evse in config.evses)

    add(
        VariableSpec(
            "ChargingStation",
            "AvailabilityState",
            "OptionList",
            "Available",
            "ReadOnly",
            reader=_station_state,
            values_list=_STATES,
            supports_monitoring=True,
        )
    )
    add(VariableSpec("ChargingStation", "Available", "boolean", "true", "ReadOnly"))
    add(VariableSpec("ChargingStation", "Model", "string", config.model, "ReadOnly"))
    add(VariableSpec("ChargingStation", "VendorName", "string", config.vendor, "ReadOnly"))
    add(VariableSpec("ChargingStation", "SupplyPhases", "integer", str(phases), "ReadOnly"))
    station_max_w = sum(evse.max_power_w for evse in config.evses)
    add(
        VariableSpec(
            "ChargingStation",
            "Power",
            "decimal",
            "",
            "ReadOnly",
            unit="W",
            reader=_station_power,
            supports_monitoring=True,
            other_attributes=(("MaxSet", decimal_text(station_max_w)),),
        )
    )
    # No component of the station is ever faulted in the simulation.
    add(VariableSpec("ChargingStation", "Problem", "boolean", "false", "ReadOnly"))

    for evse_id, evse in enumerate(config.evses, start=1):
        add(
            VariableSpec(
                "EVSE",
                "AvailabilityState",
                "OptionList",
                "Available",
                "ReadOnly",
                evse_id=evse_id,
                reader=functools.partial(_evse_state, evse_id),
                values_list=_STATES,
                supports_monitoring=True,
            )
        )
        add(VariableSpec("EVSE", "Available", "boolean", "true", "ReadOnly", evse_id=evse_id))
        add(
            VariableSpec(
                "EVSE",
                "Power",
                "decimal",
                "",
                "ReadOnly",
                evse_id=evse_id,
                unit="W",
                max_limit=evse.max_power_w,
                reader=functools.partial(_evse_power, evse_id),
                supports_monitoring=True,
                other_attributes=(("MaxSet", decimal_text(evse.max_power_w)),),
            )
        )
        add(
            VariableSpec(
                "EVSE",
                "Voltage",
                "decimal",
                f"{NOMINAL_PHASE_VOLTAGE_V:g}",
                "ReadOnly",
                evse_id=evse_id,
                unit="V",
            )
        )
        add(VariableSpec("EVSE", "Problem", "boolean", "false", "ReadOnly", evse_id=evse_id))
        add(
            VariableSpec(
                "EVSE", "SupplyPhases", "integer", str(evse.phases), "ReadOnly", evse_id=evse_id
            )
        )
        for connector_id, connector_type in enumerate(evse.connector_types, start=1):
            add(
                VariableSpec(
                    "Connector",
                    "AvailabilityState",
                    "OptionList",
                    "Available",
                    "ReadOnly",
                    evse_id=evse_id,
                    connector_id=connector_id,
                    reader=functools.partial(_connector_status, evse_id, connector_id),
                    values_list=_STATES,
                    supports_monitoring=True,
                )
            )
            add(
                VariableSpec(
                    "Connector",
                    "Available",
                    "boolean",
                    "true",
                    "ReadOnly",
                    evse_id=evse_id,
                    connector_id=connector_id,
                )
            )
            add(
                VariableSpec(
                    "Connector",
                    "ConnectorType",
                    "string",
                    connector_type,
                    "ReadOnly",
                    evse_id=evse_id,
                    connector_id=connector_id,
                )
            )
            add(
                VariableSpec(
                    "Connector",
                    "SupplyPhases",
                    "integer",
                    str(evse.phases),
                    "ReadOnly",
                    evse_id=evse_id,
                    connector_id=connector_id,
                )
            )

    return variables
