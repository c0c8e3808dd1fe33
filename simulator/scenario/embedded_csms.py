"""The `embedded_csms` section: what fleetsim's own CSMS does beyond answering everything
Accepted (smart charging, V2X profiles, deauthorizing some transactions, reserving EVSEs for
drivers who book ahead, ranking drivers with a chargingPriority, rolling out firmware, and what
it pushes to each station after its boot: the drivers' local authorization list and a display
message; and OCPP 2.1's energy flows: web payments, priority charging, a dynamic profile kept
up to date, AFRR signals)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from .base import MODEL_CONFIG, invalid, invalid_fields
from .firmware import FirmwareRolloutSettings
from .ranges import Range

__all__ = [
    "AfrrSettings",
    "AfrrSignalSettings",
    "DerControlSettings",
    "DynamicProfileSettings",
    "DefaultTariffSettings",
    "DisplayMessageSettings",
    "EmbeddedCsmsSettings",
    "LocalListSettings",
    "LogCollectionSettings",
    "PriorityChargingSettings",
    "TxDefaultPeriod",
    "TxDefaultProfileSettings",
    "WebPaymentSettings",
]

#: LocalAuthListCtrlr.Entries' maxLimit and ItemsPerMessage of fleetsim's stations.
LOCAL_LIST_MAX_ENTRIES = 256
LOCAL_LIST_ITEMS_PER_MESSAGE = 100
#: MessageContentType.content's maxLength in OCPP 2.0.1 (2.1 allows 1024).
DISPLAY_MESSAGE_MAX_CHARS = 512


class LocalListSettings(BaseModel):
    """The local authorization list the embedded CSMS keeps on every station (D01)."""

    model_config = MODEL_CONFIG

    entries: int = Field(
        default=LOCAL_LIST_MAX_ENTRIES,
        ge=1,
        le=LOCAL_LIST_MAX_ENTRIES,
        description=(
            "How many of the drivers' IdTokens the list holds: those of drivers 1, 2, ... of "
            "ev_fleet.id_tokens (each driver's token of every id_token_types type, "
            "NoAuthorization aside), all of them when they are fewer. At most 256, the "
            "stations' LocalAuthListCtrlr.Entries maxLimit."
        ),
    )
    items_per_message: int = Field(
        default=LOCAL_LIST_ITEMS_PER_MESSAGE,
        ge=1,
        le=LOCAL_LIST_ITEMS_PER_MESSAGE,
        description=(
            "Entries per SendLocalList: the list goes as a Full update, then Differential "
            "updates with the next versions. At most 100, the stations' "
            "LocalAuthListCtrlr.ItemsPerMessage."
        ),
    )


class DisplayMessageSettings(BaseModel):
    """A message the embedded CSMS sets on every station's display after boot (O01)."""

    model_config = MODEL_CONFIG

    text: str = Field(
        min_length=1,
        max_length=DISPLAY_MESSAGE_MAX_CHARS,
        description="What the display shows, e.g. a welcome or the tariff (UTF-8 text).",
    )
    language: str = Field(
        default="en",
        min_length=2,
        max_length=8,
        description=(
            "The text's language, an RFC 5646 code; fleetsim's displays offer en, de, fr, nl, "
            "es and it, and refuse others."
        ),
    )
    id: int = Field(
        default=1, ge=0, description="The message's id; setting it again after a boot replaces it."
    )


class DefaultTariffSettings(BaseModel):
    """The default tariff the embedded CSMS sets on every OCPP 2.1 station after boot (I07)."""

    model_config = MODEL_CONFIG

    currency: str = Field(
        default="EUR",
        min_length=3,
        max_length=3,
        description=(
            "ISO 4217 code; the stations' TariffCostCtrlr.Currency must be the same (EUR) or "
            "they refuse the tariff."
        ),
    )
    price_kwh: float = Field(default=0.39, ge=0, description="Price per kWh, excluding tax.")
    price_minute: float = Field(
        default=0.0, ge=0, description="Price per minute while energy flows, excluding tax."
    )
    idle_price_minute: float = Field(
        default=0.0,
        ge=0,
        description="Price per minute of a transaction without energy flowing (parking).",
    )
    fixed: float = Field(default=0.0, ge=0, description="A fee per transaction.")


class LogCollectionSettings(BaseModel):
    """A daily log collection: GetLog to a share of the stations at a time of day (N01)."""

    model_config = MODEL_CONFIG

    time_of_day: str = Field(
        default="02:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description=(
            "HH:MM, UTC, of simulated time: each day, each chosen station is asked at its first "
            "Heartbeat after this time (never in the first moments of the run)."
        ),
    )
    share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of the stations (0..1, by station id) asked for a log every day.",
    )
    log_type: Literal["DiagnosticsLog", "SecurityLog"] = Field(
        default="DiagnosticsLog", description="The log asked for."
    )
    remote_location: str = Field(
        default="https://logs.fleetsim.invalid/upload",
        min_length=1,
        description=(
            "Where the stations are told to upload (the station id is appended); the upload "
            "is simulated, nothing is sent there."
        ),
    )

    @property
    def time_of_day_s(self) -> int:
        hours, minutes = self.time_of_day.split(":")
        return int(hours) * 3600 + int(minutes) * 60


class TxDefaultPeriod(BaseModel):
    """One period of the daily TxDefaultProfile: from a time of day on, a limit."""

    model_config = MODEL_CONFIG

    at: str = Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="HH:MM, UTC, of simulated time: when the period begins each day.",
    )
    limit_w: float = Field(gt=0, description="The limit of each EVSE's transaction, W.")

    @property
    def at_s(self) -> int:
        hours, minutes = self.at.split(":")
        return int(hours) * 3600 + int(minutes) * 60


class TxDefaultProfileSettings(BaseModel):
    """A daily TxDefaultProfile the embedded CSMS installs on every station after boot (K01)."""

    model_config = MODEL_CONFIG

    periods: list[TxDefaultPeriod] = Field(
        min_length=1,
        max_length=24,
        description=(
            "The day's periods in ascending time; before the first, the last one of the day "
            "before goes on (at most 24, the stations' SmartChargingCtrlr.PeriodsPerSchedule)."
        ),
    )
    id: int = Field(
        default=900,
        ge=1,
        description="The profile's id; installing it again after a boot replaces it.",
    )
    stack_level: int = Field(
        default=0, ge=0, le=10, description="Its stackLevel (at most ProfileStackLevel, 10)."
    )

    @field_validator("periods")
    @classmethod
    def _ascending(cls, periods: list[TxDefaultPeriod]) -> list[TxDefaultPeriod]:
        starts = [period.at_s for period in periods]
        if starts != sorted(set(starts)):
            raise invalid(
                "the periods' times must ascend and differ, e.g. 00:00, 17:00, 21:00; got "
                + ", ".join(period.at for period in periods)
            )
        return periods


class DerControlSettings(BaseModel):
    """A DER curve the CSMS sets on each OCPP 2.1 station (SetDERControl, R04), as a default
    control: after its boot, when it reports a grid event (NotifyDERAlarm), or both."""

    model_config = MODEL_CONFIG

    control_type: Literal["FreqWatt", "VoltWatt"] = Field(
        default="FreqWatt",
        description=(
            "FreqWatt: x in Hz; VoltWatt: x in percent of the nominal voltage.  y is the share "
            "of the EVSE's maximum power (PctMaxW) the EV may take or give at x."
        ),
    )
    curve: list[tuple[float, float]] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description=(
            "The curve's (x, y) points.  null: for FreqWatt 0 % at 1 Hz below nominal rising "
            "to 100 % at 0.2 Hz below; for VoltWatt 50 % at 90 % of nominal, 100 % at 95 %."
        ),
    )
    priority: int = Field(default=1, ge=0, description="The control's priority (0 is highest).")
    control_id: str = Field(
        default="fleetsim-der", min_length=1, max_length=36, description="The controlId sent."
    )
    after_boot: bool = Field(
        default=True, description="Send the curve after each Accepted BootNotification."
    )
    on_alarm: bool = Field(
        default=True,
        description="Send the curve when a station reports that a grid event began.",
    )

    @field_validator("curve")
    @classmethod
    def _percentages(
        cls, curve: list[tuple[float, float]] | None
    ) -> list[tuple[float, float]] | None:
        if curve is not None and any(not 0 <= y <= 100 for _, y in curve):
            raise invalid("each point's y is a percentage of the EVSE's maximum power: 0 to 100")
        return curve


class WebPaymentSettings(BaseModel):
    """Web payers at a share of the OCPP 2.1 stations (C25): the CSMS announces each payment
    (NotifyWebPaymentStarted) and starts its transaction (RequestStartTransaction)."""

    model_config = MODEL_CONFIG

    every_s: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "Simulated seconds between web payers at each chosen station: every every_s the "
            "CSMS picks the station's first free EVSE (every connector Available) for one."
        ),
    )
    station_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description=(
            "Share of the OCPP 2.1 stations (0..1, by station id) whose QR code drivers use; "
            "web payment needs no payment terminal."
        ),
    )
    delay_s: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Simulated seconds the payment takes on the web page: from NotifyWebPaymentStarted "
            "to RequestStartTransaction with the payment's DirectPayment IdToken. Shorter than "
            "timeout_s."
        ),
    )
    timeout_s: int = Field(
        default=300,
        gt=0,
        description=(
            "The timeout of NotifyWebPaymentStarted: how long the station awaits the start."
        ),
    )
    abandon_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description=(
            "Share of web payers (0..1) who give up on the web page: no start follows and the "
            "station stops waiting after timeout_s."
        ),
    )

    @model_validator(mode="after")
    def _starts_within_the_timeout(self) -> Self:
        if self.delay_s >= self.timeout_s:
            message = (
                f"delay_s ({self.delay_s:g}) must be shorter than timeout_s ({self.timeout_s}): "
                "the station stops waiting for the transaction's start when the timeout passes"
            )
            raise invalid_fields([(("delay_s",), message, self.delay_s)])
        return self


class PriorityChargingSettings(BaseModel):
    """A PriorityCharging profile on every OCPP 2.1 station, and who charges by it (K21-K22)."""

    model_config = MODEL_CONFIG

    limit_w: float = Field(
        gt=0,
        description=(
            "The limit of the PriorityCharging profile the CSMS installs for the whole "
            "station (evseId 0) after each Accepted boot, W: a transaction with priority "
            "charging charges by it instead of its TxProfile or TxDefaultProfile."
        ),
    )
    id: int = Field(default=910, ge=1, description="The profile's id.")
    share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of transactions (0..1, by transaction id) the CSMS switches to priority "
            "charging as they start (UsePriorityCharging, K21), as for drivers who chose it "
            "in the operator's app."
        ),
    )
    driver_requests: Literal["grant", "refuse"] = Field(
        default="grant",
        description=(
            "What the CSMS makes of a driver's priority button (NotifyPriorityCharging, K22; "
            "ev_fleet.priority_button_share): grant lets it be; refuse switches priority "
            "charging off again (UsePriorityCharging, activate false)."
        ),
    )


class DynamicProfileSettings(BaseModel):
    """A Dynamic TxDefaultProfile on every OCPP 2.1 station, its limit following a daily curve
    (K28-K29)."""

    model_config = MODEL_CONFIG

    curve: list[TxDefaultPeriod] = Field(
        min_length=1,
        max_length=24,
        description=(
            "The daily limit curve, [{at: HH:MM UTC, limit_w}] ascending: the limit at any "
            "moment is linear between the points around it, wrapping past midnight; one point "
            "is a constant limit."
        ),
    )
    update_interval_s: float = Field(
        default=900.0,
        gt=0,
        description=(
            "Simulated seconds between the CSMS's updates: each sends UpdateDynamicSchedule "
            "with the curve's limit of that moment to every station holding the profile whose "
            "limit differs."
        ),
    )
    pull_interval_s: int | None = Field(
        default=3600,
        gt=0,
        description=(
            "The profile's dynUpdateInterval, seconds: a station that had no update for that "
            "long asks (PullDynamicScheduleUpdate) and the CSMS answers with the curve's limit "
            "of that moment. null: the stations never ask."
        ),
    )
    id: int = Field(default=920, ge=1, description="The profile's id.")
    stack_level: int = Field(
        default=1,
        ge=0,
        le=10,
        description=(
            "Its stackLevel; it must differ from tx_default_profile's, both being the whole "
            "station's TxDefaultProfile. The higher one is in force."
        ),
    )

    @field_validator("curve")
    @classmethod
    def _ascending(cls, curve: list[TxDefaultPeriod]) -> list[TxDefaultPeriod]:
        starts = [point.at_s for point in curve]
        if starts != sorted(set(starts)):
            raise invalid(
                "the curve's times must ascend and differ, e.g. 00:00, 12:00, 18:00; got "
                + ", ".join(point.at for point in curve)
            )
        return curve


class AfrrSignalSettings(BaseModel):
    """One AFRR activation level at a second of the run."""

    model_config = MODEL_CONFIG

    at_s: float = Field(ge=0, description="Simulated seconds after the start when it is sent.")
    signal: int = Field(
        ge=-100,
        le=100,
        description=(
            "The level: +100 full upward activation (the EVs discharge at v2x_max_power_w), 0 "
            "none (half power), -100 full downward activation (full charge)."
        ),
    )


class AfrrSettings(BaseModel):
    """AFRR signals to the stations whose EVs run the CSMS's CentralFrequency profile (Q07)."""

    model_config = MODEL_CONFIG

    from_grid_events: bool = Field(
        default=True,
        description=(
            "Answer each of grid.events: at its start the level of its deviation, "
            "(nominal - frequency) / full_activation_hz in percent, capped at +-100; 0 at "
            "its end."
        ),
    )
    full_activation_hz: float = Field(
        default=0.2,
        gt=0,
        description="The frequency deviation, Hz, that activates the reserve fully.",
    )
    signals: list[AfrrSignalSettings] = Field(
        default_factory=list,
        max_length=1000,
        description="Levels sent at given seconds of the run, besides those of grid events.",
    )


class EmbeddedCsmsSettings(BaseModel):
    """What the embedded CSMS does beyond answering (it is ignored with an external CSMS)."""

    model_config = MODEL_CONFIG

    tx_limit_w: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Send a TxProfile with this limit (W) right after each transaction starts, as a "
            "CSMS doing smart charging would."
        ),
    )
    v2x_operation_mode: Literal["CentralSetpoint", "LocalFrequency", "CentralFrequency"] | None = (
        Field(
            default=None,
            description=(
                "When a bidirectional EV reports its charging needs, send a TxProfile with "
                "this V2X operation mode. CentralFrequency: half of v2x_max_power_w until "
                "AFRR signals (afrr) move the EV along a signal-watt curve."
            ),
        )
    )
    v2x_setpoint_w: float = Field(
        default=-7_000.0,
        description="The setpoint of a CentralSetpoint profile, W; negative discharges.",
    )
    v2x_max_power_w: float = Field(
        default=11_000.0,
        gt=0,
        description=(
            "Full response of a LocalFrequency profile's frequency-watt curve, or of a "
            "CentralFrequency profile's signal-watt curve, W."
        ),
    )
    deauthorize_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of transactions whose IdToken the CSMS answers Invalid in TransactionEvent, "
            "as a back office that blocked the card would; the station then ends them "
            "(DeAuthorized) or stops their energy, per TxCtrlr.StopTxOnInvalidId."
        ),
    )
    remote_swap_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of the swap EVs' drivers (0..1) at battery-swap stations who ask the CSMS "
            "for their swap (its app), which sends the station RequestBatterySwap (S02); the "
            "others authorize at the station (S01). Needs the embedded CSMS in the run's own "
            "process, as reserve_share does."
        ),
    )
    reserve_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of the drivers arriving at the sites (0..1) who reserve before they come, "
            "through the CSMS, which sends the station ReserveNow; the driver then uses the "
            "reserved EVSE and the TransactionEvent carries the reservationId. A refused "
            "reservation changes nothing: the driver comes anyway. Needs the embedded CSMS in "
            "the run's own process (no csms.url, no --workers): an external CSMS cannot be made "
            "to reserve, so the setting is then ignored with a warning. Load-test loop sites "
            "(loop_idle_s) have no drivers who book."
        ),
    )
    reserve_ahead_s: Range = Field(
        default=Range(min=300, max=1800),
        description=(
            "How long before arriving a driver reserves, in simulated seconds (uniform); a "
            "driver drawn closer to their arrival reserves at once, unless it is under a minute "
            "away."
        ),
    )
    reserve_for: Literal["evse", "connector_type"] = Field(
        default="evse",
        description=(
            "What the CSMS reserves: evse, the free EVSE the driver's app picked (evseId); "
            "connector_type, any EVSE of that station with the connector type the EV uses "
            "(connectorType, no evseId; the station keeps one free)."
        ),
    )
    reserve_grace_s: float = Field(
        default=900.0,
        gt=0,
        description=(
            "How long after the driver's planned arrival the reservation holds (its "
            "expiryDateTime), in simulated seconds."
        ),
    )
    priority_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of drivers (0..1, by IdToken, so a driver keeps their rank) whose idTokenInfo "
            "carries charging_priority in the CSMS's Authorize and TransactionEvent answers; "
            "where a site's capacity_kw limits the EVs, their transactions are served first."
        ),
    )
    charging_priority: int = Field(
        default=5,
        ge=-9,
        le=9,
        description=(
            "The chargingPriority given to priority_share of the drivers: -9..9, higher "
            "charges first; every other driver has the default, 0."
        ),
    )

    local_list: LocalListSettings | None = Field(
        default=None,
        description=(
            "Keep the drivers' IdTokens in a local authorization list on every station, so "
            "they charge offline where AuthCtrlr.LocalAuthorizeOffline allows it: after each "
            "Accepted BootNotification the CSMS asks GetLocalListVersion and, unless the "
            "station holds the CSMS's version (as after a Reset), sends the list with "
            "SendLocalList. {} takes the defaults. null: no list, and a boot costs nothing more."
        ),
    )
    display_message: DisplayMessageSettings | None = Field(
        default=None,
        description=(
            "Set this message on every station's display (SetDisplayMessage, priority "
            "NormalCycle) after each Accepted BootNotification. null: none."
        ),
    )
    firmware_rollout: FirmwareRolloutSettings | None = Field(
        default=None,
        description=(
            "Send UpdateFirmware to a share of the stations at one moment of the run and count "
            "how each update ends (L01). Needs the embedded CSMS in the run's own process (no "
            "csms.url, no --workers); otherwise it is ignored with a warning."
        ),
    )
    tx_default_profile: TxDefaultProfileSettings | None = Field(
        default=None,
        description=(
            "Install this daily TxDefaultProfile for the whole station (evseId 0, Recurring "
            "Daily, W) on every station after each Accepted BootNotification, e.g. a lower "
            "limit in the evening peak; the EVs follow it at every period boundary. null: none."
        ),
    )
    default_tariff: DefaultTariffSettings | None = Field(
        default=None,
        description=(
            "Set this tariff on every OCPP 2.1 station after each Accepted BootNotification "
            "(SetDefaultTariff, evseId 0), so every transaction reports its running and final "
            "cost (costDetails); the CSMS prices each final cost again and counts whether it "
            "agrees (cost_agreed, cost_disagreed). {} takes the defaults. null: no tariff."
        ),
    )
    log_collection: LogCollectionSettings | None = Field(
        default=None,
        description=(
            "Collect logs from a share of the stations every day (GetLog, answered by "
            "LogStatusNotification); null collects none."
        ),
    )
    der_control: DerControlSettings | None = Field(
        default=None,
        description=(
            "Set a DER curve (FreqWatt or VoltWatt) on each OCPP 2.1 station after its boot "
            "and/or when it reports a grid event; null sets none."
        ),
    )

    web_payments: WebPaymentSettings | None = Field(
        default=None,
        description=(
            "Web payers (C25) at a share of the OCPP 2.1 stations: NotifyWebPaymentStarted for "
            "a free EVSE, then RequestStartTransaction with a DirectPayment IdToken. null: none."
        ),
    )
    priority_charging: PriorityChargingSettings | None = Field(
        default=None,
        description=(
            "Install a PriorityCharging profile on every OCPP 2.1 station after boot, switch a "
            "share of transactions to it (K21) and answer drivers' priority buttons (K22). "
            "null: none."
        ),
    )
    dynamic_profile: DynamicProfileSettings | None = Field(
        default=None,
        description=(
            "Install a Dynamic TxDefaultProfile on every OCPP 2.1 station after boot and keep "
            "its limit on a daily curve with UpdateDynamicSchedule (K28) and answers to "
            "PullDynamicScheduleUpdate (K29). null: none."
        ),
    )
    afrr: AfrrSettings | None = Field(
        default=None,
        description=(
            "Send AFRR signals (from grid.events and/or listed) to the stations whose EVs run "
            "the CentralFrequency profile; needs v2x_operation_mode CentralFrequency. null: "
            "none."
        ),
    )

    @model_validator(mode="after")
    def _energy_flows_fit_together(self) -> Self:
        problems: list[tuple[tuple[str, ...], str, Any]] = []
        if self.afrr is not None and self.v2x_operation_mode != "CentralFrequency":
            problems.append(
                (
                    ("afrr",),
                    "afrr signals steer EVs that run a CentralFrequency TxProfile; set "
                    "v2x_operation_mode: CentralFrequency, or remove afrr",
                    self.v2x_operation_mode,
                )
            )
        dynamic, daily = self.dynamic_profile, self.tx_default_profile
        if dynamic is not None and daily is not None and dynamic.stack_level == daily.stack_level:
            problems.append(
                (
                    ("dynamic_profile", "stack_level"),
                    "dynamic_profile and tx_default_profile are both the whole station's "
                    f"TxDefaultProfile at stack_level {daily.stack_level}, which a station "
                    "refuses; give them different stack levels (the higher one is in force)",
                    dynamic.stack_level,
                )
            )
        if problems:
            raise invalid_fields(problems)
        return self

    @field_validator("charging_priority")
    @classmethod
    def _priority_differs_from_the_default(cls, priority: int) -> int:
        if priority == 0:
            raise invalid(
                "0 is every driver's default priority, so it would rank nobody; choose 1..9 to "
                "serve priority_share of the drivers first, or -9..-1 to serve them last"
            )
        return priority
