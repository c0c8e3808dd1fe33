"""The standardized components and variables a fleetsim station exposes (OCPP Part 1).

This covers the Minimum Device Model -- the controllers that the basic implementation set reads
(OCPPCommCtrlr, DeviceDataCtrlr, SecurityCtrlr, AuthCtrlr, TxCtrlr, SampledDataCtrlr,
AlignedDataCtrlr, ClockCtrlr) and the ChargingStation / EVSE / Connector components of the
three-tier model -- with the values the station's behaviour really follows.  AvailabilityState
and the clock are read live from the station.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .device_model import DeviceModelSpec, VariableSpec

if TYPE_CHECKING:
    from .config import StationConfig

__all__ = ["MEASURANDS", "build_device_model_spec"]

#: The measurands a fleetsim meter can sample.
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Power.Active.Export",
    "SoC",
    "Current.Import",
    "Voltage",
    "Current.Offered",
    "Power.Offered",
)

_TX_POINTS = (
    "ParkingBayOccupancy",
    "EVConnected",
    "Authorized",
    "DataSigned",
    "PowerPathClosed",
    "EnergyTransfer",
)


def _station_state(station: Any) -> str:
    return str(station.availability_state())


def _evse_state(evse_id: int, station: Any) -> str:
    return str(station.evse_state(evse_id))


def _connector_status(evse_id: int, connector_id: int, station: Any) -> str:
    return str(station.connector_status(evse_id, connector_id))


def _profile_count(station: Any) -> str:
    return str(len(station.profiles) if station.profiles is not None else 0)


def _clock(station: Any) -> str:
    return str(station.clock.timestamp())


def build_device_model_spec(config: StationConfig) -> DeviceModelSpec:
    """The device model shared by every station built from `config`."""
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

    comm = "OCPPCommCtrlr"
    add(
        VariableSpec(
            comm,
            "HeartbeatInterval",
            "integer",
            str(config.heartbeat_interval_s),
            unit="s",
            min_limit=1,
            max_limit=86_400,
        )
    )
    add(
        VariableSpec(
            comm,
            "MessageTimeout",
            "integer",
            "30",
            "ReadOnly",
            variable_instance="Default",
            unit="s",
        )
    )
    add(
        VariableSpec(
            comm,
            "MessageAttempts",
            "integer",
            "3",
            variable_instance="TransactionEvent",
            min_limit=0,
            max_limit=10,
        )
    )
    add(
        VariableSpec(
            comm,
            "MessageAttemptInterval",
            "integer",
            "60",
            variable_instance="TransactionEvent",
            unit="s",
            min_limit=0,
            max_limit=3600,
        )
    )
    add(
        VariableSpec(
            comm,
            "RetryBackOffWaitMinimum",
            "integer",
            f"{config.retry_backoff_wait_minimum_s:.0f}",
            unit="s",
            min_limit=0,
        )
    )
    add(
        VariableSpec(
            comm,
            "RetryBackOffRandomRange",
            "integer",
            f"{config.retry_backoff_random_range_s:.0f}",
            unit="s",
            min_limit=0,
        )
    )
    add(
        VariableSpec(
            comm,
            "RetryBackOffRepeatTimes",
            "integer",
            str(config.retry_backoff_repeat_times),
            min_limit=0,
            max_limit=20,
        )
    )
    add(
        VariableSpec(
            comm, "NetworkConfigurationPriority", "SequenceList", "1", values_list=("0", "1", "2")
        )
    )
    add(VariableSpec(comm, "NetworkProfileConnectionAttempts", "integer", "3", min_limit=1))
    add(VariableSpec(comm, "OfflineThreshold", "integer", "60", unit="s", min_limit=0))
    add(VariableSpec(comm, "ResetRetries", "integer", "1", min_limit=0))
    add(VariableSpec(comm, "UnlockOnEVSideDisconnect", "boolean", "true"))
    add(
        VariableSpec(
            comm,
            "FileTransferProtocols",
            "MemberList",
            "HTTPS",
            "ReadOnly",
            values_list=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP"),
        )
    )

    data = "DeviceDataCtrlr"
    for instance in ("GetReport", "GetVariables", "SetVariables"):
        add(
            VariableSpec(
                data, "ItemsPerMessage", "integer", "100", "ReadOnly", variable_instance=instance
            )
        )
        add(
            VariableSpec(
                data, "BytesPerMessage", "integer", "65000", "ReadOnly", variable_instance=instance
            )
        )

    add(
        VariableSpec(
            "SecurityCtrlr", "SecurityProfile", "integer", str(config.security_profile), "ReadOnly"
        )
    )
    add(VariableSpec("SecurityCtrlr", "OrganizationName", "string", config.vendor))
    add(VariableSpec("SecurityCtrlr", "CertificateEntries", "integer", "0", "ReadOnly"))

    auth = "AuthCtrlr"
    add(VariableSpec(auth, "Enabled", "boolean", "true"))
    add(VariableSpec(auth, "AuthorizeRemoteStart", "boolean", "false"))
    add(VariableSpec(auth, "LocalAuthorizeOffline", "boolean", "true"))
    add(VariableSpec(auth, "LocalPreAuthorize", "boolean", "false"))
    add(VariableSpec(auth, "OfflineTxForUnknownIdEnabled", "boolean", "true"))

    tx = "TxCtrlr"
    add(
        VariableSpec(
            tx,
            "EVConnectionTimeOut",
            "integer",
            str(config.ev_connection_timeout_s),
            unit="s",
            min_limit=1,
        )
    )
    add(VariableSpec(tx, "StopTxOnEVSideDisconnect", "boolean", "true", "ReadOnly"))
    add(VariableSpec(tx, "StopTxOnInvalidId", "boolean", "true"))
    add(VariableSpec(tx, "TxBeforeAcceptedEnabled", "boolean", "false", "ReadOnly"))
    add(
        VariableSpec(
            tx,
            "TxStartPoint",
            "MemberList",
            ",".join(config.tx_start_points),
            values_list=("EVConnected", "Authorized", "PowerPathClosed"),
        )
    )
    add(
        VariableSpec(
            tx,
            "TxStopPoint",
            "MemberList",
            "EVConnected,Authorized",
            "ReadOnly",
            values_list=_TX_POINTS,
        )
    )

    sampled = "SampledDataCtrlr"
    add(VariableSpec(sampled, "Enabled", "boolean", "true"))
    add(
        VariableSpec(
            sampled,
            "TxUpdatedInterval",
            "integer",
            str(config.meter_interval_s),
            unit="s",
            min_limit=0,
        )
    )
    add(
        VariableSpec(
            sampled,
            "TxUpdatedMeasurands",
            "MemberList",
            # A bidirectional station meters what flows back too (Q, J: export measurands).
            "Energy.Active.Import.Register,Power.Active.Import,SoC"
            + (
                ",Energy.Active.Export.Register,Power.Active.Export"
                if any(evse.bidirectional for evse in config.evses)
                else ""
            ),
            values_list=MEASURANDS,
        )
    )
    add(
        VariableSpec(
            sampled,
            "TxStartedMeasurands",
            "MemberList",
            "Energy.Active.Import.Register",
            values_list=MEASURANDS,
        )
    )
    add(
        VariableSpec(
            sampled,
            "TxEndedMeasurands",
            "MemberList",
            "Energy.Active.Import.Register",
            values_list=MEASURANDS,
        )
    )
    add(VariableSpec(sampled, "TxEndedInterval", "integer", "0", unit="s", min_limit=0))

    aligned = "AlignedDataCtrlr"
    add(VariableSpec(aligned, "Enabled", "boolean", "true"))
    add(VariableSpec(aligned, "Interval", "integer", "0", unit="s", min_limit=0))
    add(
        VariableSpec(
            aligned,
            "Measurands",
            "MemberList",
            "Energy.Active.Import.Register,Power.Active.Import",
            values_list=MEASURANDS,
        )
    )
    add(
        VariableSpec(
            aligned,
            "TxEndedMeasurands",
            "MemberList",
            "Energy.Active.Import.Register",
            values_list=MEASURANDS,
        )
    )
    add(VariableSpec(aligned, "TxEndedInterval", "integer", "0", unit="s", min_limit=0))

    smart = "SmartChargingCtrlr"
    add(VariableSpec(smart, "Enabled", "boolean", "true", "ReadOnly"))
    add(
        VariableSpec(
            smart,
            "Entries",
            "integer",
            "0",
            "ReadOnly",
            reader=_profile_count,
            variable_instance="ChargingProfiles",
        )
    )
    add(VariableSpec(smart, "PeriodsPerSchedule", "integer", "24", "ReadOnly"))
    add(VariableSpec(smart, "ProfileStackLevel", "integer", "10", "ReadOnly"))
    add(VariableSpec(smart, "RateUnit", "MemberList", "A,W", "ReadOnly", values_list=("A", "W")))
    add(VariableSpec(smart, "LimitChangeSignificance", "decimal", "0.1", min_limit=0, max_limit=1))

    add(VariableSpec("ClockCtrlr", "DateTime", "dateTime", "", "ReadOnly", reader=_clock))
    add(
        VariableSpec(
            "ClockCtrlr",
            "TimeSource",
            "SequenceList",
            "Heartbeat",
            values_list=(
                "Heartbeat",
                "NTP",
                "GPS",
                "RealTimeClock",
                "MobileNetwork",
                "RadioTimeTransmitter",
            ),
        )
    )
    return DeviceModelSpec(variables)
