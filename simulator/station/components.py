"""The components of the three-tier model in the device model: ChargingStation, EVSE, Connector.

These belong to the station itself rather than to a block; the controllers (OCPPCommCtrlr,
TxCtrlr, AuthCtrlr, ...) are declared by the blocks that act on them.  AvailabilityState is
read live from the station, so it can never disagree with what the station reports.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .device_model import VariableSpec

if TYPE_CHECKING:
    from .config import StationConfig

__all__ = ["component_variables"]


def _station_state(station: Any) -> str:
    return str(station.availability_state())


def _evse_state(evse_id: int, station: Any) -> str:
    return str(station.evse_state(evse_id))


def _connector_status(evse_id: int, connector_id: int, station: Any) -> str:
    return str(station.connector_status(evse_id, connector_id))


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
            values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted"),
        )
    )
    add(VariableSpec("ChargingStation", "Available", "boolean", "true", "ReadOnly"))
    add(VariableSpec("ChargingStation", "Model", "string", config.model, "ReadOnly"))
    add(VariableSpec("ChargingStation", "VendorName", "string", config.vendor, "ReadOnly"))
    add(VariableSpec("ChargingStation", "SupplyPhases", "integer", str(phases), "ReadOnly"))

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
                values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted"),
            )
        )
        add(VariableSpec("EVSE", "Available", "boolean", "true", "ReadOnly", evse_id=evse_id))
        add(
            VariableSpec(
                "EVSE",
                "Power",
                "decimal",
                f"{evse.max_power_w:g}",
                "ReadOnly",
                evse_id=evse_id,
                unit="W",
                max_limit=evse.max_power_w,
            )
        )
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
                    values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted"),
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
