"""The `embedded_csms` section: what fleetsim's own CSMS does beyond answering everything
Accepted (smart charging, V2X profiles, deauthorizing some transactions, reserving EVSEs for
drivers who book ahead, ranking drivers with a chargingPriority, rolling out firmware, and what
it pushes to each station after its boot: the drivers' local authorization list and a display
message)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from .base import MODEL_CONFIG, invalid
from .firmware import FirmwareRolloutSettings
from .ranges import Range

__all__ = [
    "DerControlSettings",
    "DefaultTariffSettings",
    "DisplayMessageSettings",
    "EmbeddedCsmsSettings",
    "LocalListSettings",
    "LogCollectionSettings",
    "TxDefaultPeriod",
    "TxDefaultProfileSettings",
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
    v2x_operation_mode: Literal["CentralSetpoint", "LocalFrequency"] | None = Field(
        default=None,
        description=(
            "When a bidirectional EV reports its charging needs, send a TxProfile with this V2X "
            "operation mode."
        ),
    )
    v2x_setpoint_w: float = Field(
        default=-7_000.0,
        description="The setpoint of a CentralSetpoint profile, W; negative discharges.",
    )
    v2x_max_power_w: float = Field(
        default=11_000.0,
        gt=0,
        description="Full response of a LocalFrequency profile's frequency-watt curve, W.",
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

    @field_validator("charging_priority")
    @classmethod
    def _priority_differs_from_the_default(cls, priority: int) -> int:
        if priority == 0:
            raise invalid(
                "0 is every driver's default priority, so it would rank nobody; choose 1..9 to "
                "serve priority_share of the drivers first, or -9..-1 to serve them last"
            )
        return priority
