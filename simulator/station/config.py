"""`StationConfig`: what every station of a fleet has in common, built once and shared.

Per-station memory is the budget that decides how many stations fit on a machine, so nothing
that is the same for all stations -- the EVSE layout, the protocol settings, and the device
model and blocks built from them (`registry.station_spec`) -- is stored per station.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ocpp import OcppVersion

__all__ = ["BatterySwapConfig", "EvseConfig", "FirmwareConfig", "PaymentConfig", "StationConfig"]

TX_POINTS = ("EVConnected", "Authorized", "PowerPathClosed")
CONNECTOR_STATUS_REPORTS = ("status_notification", "notify_event", "both")


@dataclass(frozen=True, slots=True)
class EvseConfig:
    max_power_w: float = 22_000.0
    phases: int = 3
    connector_types: tuple[str, ...] = ("cType2",)
    supply: str = "AC"
    bidirectional: bool = False


@dataclass(frozen=True, slots=True)
class FirmwareConfig:
    """How firmware transfers go on the stations (block L): how long each step takes in
    simulated seconds, and what share of them fails.  Each share is drawn per station, request
    and attempt, so a run is reproducible (see the scenario's `stations.firmware`)."""

    download_s: float = 60.0
    verify_s: float = 5.0
    install_s: float = 120.0
    download_failure_share: float = 0.0
    invalid_signature_share: float = 0.0
    install_failure_share: float = 0.0
    install_verification_failure_share: float = 0.0
    #: Whether the stations are Local Controllers, which publish firmware to the stations
    #: behind them (PublishFirmware, L03-L04).
    local_controller: bool = False


@dataclass(frozen=True, slots=True)
class PaymentConfig:
    """The stations' payment terminal and the drivers who pay at it (C17-C22; the scenario's
    `stations.payment_terminal` and `ev_fleet.payment`).  Every share is drawn per driver from
    a hash of the driver's token and arrival time, so a run is reproducible."""

    #: PaymentCtrlr.AuthorizationAmount: the amount a credit or debit card is held for.
    authorization_amount: float = 50.0
    #: Share (0..1) of card payments the payment service provider declines at the terminal.
    decline_share: float = 0.0
    #: Share (0..1) of settlements that fail (C22: NotifySettlement status Failed).
    settlement_failure_share: float = 0.0
    #: Share (0..1) of arriving drivers who pay by card at the terminal.
    card_share: float = 0.0
    #: Share (0..1) of those whose card is a prepaid card holding `prepaid_balance` (C17).
    prepaid_share: float = 0.0
    prepaid_balance: float = 20.0
    #: Share (0..1) of card payers who ask for a company receipt with a VAT number.
    vat_number_share: float = 0.0


@dataclass(frozen=True, slots=True)
class BatterySwapConfig:
    """A battery-swap station (block S, OCPP 2.1 only): its EVSEs are slots that hold packs.

    Each of the station's EVSEs is one slot (batteryData.evseId is the slot number); `packs`
    of them start with a charged pack, the others empty.  Stored packs charge at the slot's
    power (the EVSE's `max_power_w`) up to `max_soc`, as the site's load.  See the scenario's
    `stations.battery_swap` for each field.
    """

    packs: int = 3
    pack_capacity_wh: float = 75_000.0
    pack_soc: float = 0.9
    pack_soh_percent: float = 96.0
    max_soc: float = 0.95
    #: A pack with at least this SoC is one the station gives out (RequestBatterySwap is
    #: Accepted only while one is there).
    ready_soc: float = 0.8
    #: Simulated seconds from BatteryIn until the driver takes the offered pack.
    take_out_s: float = 30.0
    #: Simulated seconds the station waits for the driver to take the pack (BatteryOutTimeout).
    out_timeout_s: float = 120.0
    #: Share (0..1) of drivers who leave without taking the pack; drawn per station and swap.
    no_take_share: float = 0.0
    #: BatterySwapCtrlr.IdToken: the IdToken of the slots' charging transactions; empty makes
    #: them NoAuthorization transactions.
    charging_id_token: str = ""


@dataclass(frozen=True)
class StationConfig:
    """The station model of a fleet; see the scenario's `stations` section for each field."""

    vendor: str = "fleetsim"
    model: str = "virtual-ac-22"
    firmware_version: str = "fleetsim-0.1"
    ocpp_version: OcppVersion = "2.1"
    evses: tuple[EvseConfig, ...] = (EvseConfig(),)
    heartbeat_interval_s: int = 300
    meter_interval_s: int = 60
    tx_start_points: tuple[str, ...] = ("EVConnected", "Authorized")
    connector_status_report: str = "status_notification"
    #: The OCPP security profile of the connection the stations open: 1 (HTTP Basic auth over
    #: ws://) or 2 (TLS, wss://); SecurityCtrlr.SecurityProfile reports it.
    security_profile: int = 1
    #: Whether the scenario names the CA the stations verify the CSMS's TLS certificate with
    #: (csms.security.ca_file): the fleet's CSMS root, which counts as an installed
    #: CSMSRootCertificate when a higher security profile asks for one (A05).
    trusts_scenario_ca: bool = False
    #: Seconds a CALL waits for its answer (OCPPCommCtrlr.MessageTimeout reports it).
    message_timeout_s: float = 30.0
    retry_backoff_wait_minimum_s: float = 3.0
    retry_backoff_random_range_s: float = 10.0
    retry_backoff_repeat_times: int = 3
    ev_connection_timeout_s: int = 120
    #: Simulated seconds a reboot takes (Reset), between closing and reopening the connection.
    reboot_s: float = 5.0
    #: Device-model values the scenario sets, as ("Component.Variable[Instance]", value):
    #: they replace the defaults of every station built from this configuration.
    variable_values: tuple[tuple[str, str], ...] = ()
    firmware: FirmwareConfig = FirmwareConfig()
    #: Simulated seconds one attempt to upload a log takes (GetLog; the upload is simulated).
    log_upload_s: float = 30.0
    #: Share (0..1) of log upload attempts that fail.
    log_upload_failure_share: float = 0.0
    #: Share (0..1) of drivers who press the priority charging button (K22).
    priority_button_share: float = 0.0
    #: The payment terminal every station has (OCPP 2.1), None for stations without one.
    payment: PaymentConfig | None = None
    #: A battery-swap station's slots and packs (block S); None for a charging station.
    battery_swap: BatterySwapConfig | None = None
    #: IANA name of the stations' local time zone, the wall clock of tariff conditions (I).
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        unknown = [point for point in self.tx_start_points if point not in TX_POINTS]
        if unknown or not self.tx_start_points:
            raise ValueError(f"tx_start_points must be some of {TX_POINTS}, got {unknown}")
        if self.connector_status_report not in CONNECTOR_STATUS_REPORTS:
            raise ValueError(f"connector_status_report must be one of {CONNECTOR_STATUS_REPORTS}")
        if not self.evses:
            raise ValueError("a station needs at least one EVSE")
        if self.security_profile not in (1, 2, 3):
            raise ValueError(f"security_profile must be 1, 2 or 3, got {self.security_profile}")
        swap = self.battery_swap
        if swap is not None and not 0 <= swap.packs <= len(self.evses):
            raise ValueError(
                f"a battery-swap station with {len(self.evses)} slots holds 0 to "
                f"{len(self.evses)} packs, not {swap.packs}"
            )
