"""Which side of OCPP 2.1 may start which action.

The schemas say what a payload looks like but not who sends it; a station must know that to
answer a CSMS that sends a station-only action (NotSupported), and the embedded CSMS must know
it to answer every station-initiated action.  `tests/ocpp/test_actions.py` checks these tables
against the schema files, so an action can be neither missing nor misspelt.
"""

from __future__ import annotations

__all__ = [
    "CSMS_INITIATED",
    "OCPP_201_ACTIONS_MISSING",
    "SEND_ONLY",
    "STATION_INITIATED",
]

STATION_INITIATED: frozenset[str] = frozenset(
    {
        "Authorize",
        "BatterySwap",
        "BootNotification",
        "ClearedChargingLimit",
        "ClosePeriodicEventStream",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateChainStatus",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyPeriodicEventStream",
        "NotifyPriorityCharging",
        "NotifyReport",
        "NotifySettlement",
        "OpenPeriodicEventStream",
        "PublishFirmwareStatusNotification",
        "PullDynamicScheduleUpdate",
        "ReportChargingProfiles",
        "ReportDERControl",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
        "VatNumberValidation",
    }
)

CSMS_INITIATED: frozenset[str] = frozenset(
    {
        "AFRRSignal",
        "AdjustPeriodicEventStream",
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ChangeTransactionTariff",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDERControl",
        "ClearDisplayMessage",
        "ClearTariffs",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DataTransfer",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDERControl",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetPeriodicEventStream",
        "GetReport",
        "GetTariffs",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "NotifyAllowedEnergyTransfer",
        "NotifyWebPaymentStarted",
        "PublishFirmware",
        "RequestBatterySwap",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDERControl",
        "SetDefaultTariff",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateDynamicSchedule",
        "UpdateFirmware",
        "UsePriorityCharging",
    }
)

#: Actions sent as SEND frames, which have a request schema and no response.
SEND_ONLY: frozenset[str] = frozenset({"NotifyPeriodicEventStream"})

#: Actions of OCPP 2.1 that OCPP 2.0.1 does not have; a 2.0.1 station never sends them.
OCPP_201_ACTIONS_MISSING: frozenset[str] = frozenset(
    {
        "AFRRSignal",
        "AdjustPeriodicEventStream",
        "BatterySwap",
        "ChangeTransactionTariff",
        "ClearDERControl",
        "ClearTariffs",
        "ClosePeriodicEventStream",
        "GetCertificateChainStatus",
        "GetDERControl",
        "GetPeriodicEventStream",
        "GetTariffs",
        "NotifyAllowedEnergyTransfer",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "NotifyPeriodicEventStream",
        "NotifyPriorityCharging",
        "NotifySettlement",
        "NotifyWebPaymentStarted",
        "OpenPeriodicEventStream",
        "PullDynamicScheduleUpdate",
        "ReportDERControl",
        "RequestBatterySwap",
        "SetDERControl",
        "SetDefaultTariff",
        "UpdateDynamicSchedule",
        "UsePriorityCharging",
        "VatNumberValidation",
    }
)
