"""The `stations` section: how many stations, their ids, their EVSEs and what they report."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, Field, field_validator, model_validator

from ..tariffs import station_zone
from .base import MODEL_CONFIG, Loc, invalid, invalid_fields
from .firmware import FirmwareSettings
from .patterns import check_index_pattern, survey_index_pattern

__all__ = [
    "BatterySwapSettings",
    "ConnectorStatusReport",
    "ConnectorType",
    "EvseSpec",
    "LogUploadSettings",
    "OCPP_201_CONNECTOR_TYPES",
    "StationsSettings",
    "TxStartPoint",
]

#: Connector types of OCPP 2.1 (Appendix, ConnectorEnumStringType).  OCPP 2.0.1 has a closed enum
#: with the first 22 of them; the rest are new in 2.1.
ConnectorType = Literal[
    "cCCS1",
    "cCCS2",
    "cG105",
    "cTesla",
    "cType1",
    "cType2",
    "s309-1P-16A",
    "s309-1P-32A",
    "s309-3P-16A",
    "s309-3P-32A",
    "sBS1361",
    "sCEE-7-7",
    "sType2",
    "sType3",
    "Other1PhMax16A",
    "Other1PhOver16A",
    "Other3Ph",
    "Pan",
    "wInductive",
    "wResonant",
    "Undetermined",
    "Unknown",
    "cChaoJi",
    "cGBT-DC",
    "cLECCS",
    "cMCS",
    "cNACS",
    "cNACS-CCS1",
    "cCCS1-NACS",
    "cUltraChaoJi",
    "sType1",
]
#: The connector types OCPP 2.0.1 knows.
OCPP_201_CONNECTOR_TYPES = frozenset(get_args(ConnectorType)[:22])

#: TxStartPoint values a station can be configured with (TxCtrlr.TxStartPoint).
TxStartPoint = Literal["EVConnected", "Authorized", "PowerPathClosed"]
#: How connector status changes reach the CSMS: StatusNotification (G01), NotifyEvent on the
#: Connector's AvailabilityState (G05, the 2.1 way), or both.
ConnectorStatusReport = Literal["status_notification", "notify_event", "both"]

#: OCPP-J identifierString characters that need no percent-encoding in a URL path segment.
_STATION_ID_CHARS = re.compile(r"[A-Za-z0-9*\-_=:+@.]+")
_STATION_ID_HINT = "use letters, digits and * - _ = : + @ ."
#: OCPP-J limits the station identity in the connection URL to 48 characters.
_STATION_ID_MAX_CHARS = 48


def _default_firmware_version() -> str:
    try:
        return f"fleetsim-{importlib.metadata.version('ocpp-fleetsim')}"
    except importlib.metadata.PackageNotFoundError:
        return "fleetsim-dev"


class EvseSpec(BaseModel):
    """One EVSE of each station: its power limit, phases and connectors."""

    model_config = MODEL_CONFIG

    max_power_w: float = Field(
        default=22_000.0, gt=0, description="Most power the EVSE can deliver, in watts."
    )
    phases: Literal[1, 3] = Field(
        default=3, description="AC phases the EVSE supplies (1 or 3); reported in meter values."
    )
    connectors: tuple[ConnectorType, ...] = Field(
        default=("cType2",),
        min_length=1,
        description=(
            "Connector types of the EVSE, one entry per connector (OCPP ConnectorEnumType). "
            "Types new in OCPP 2.1 (cNACS, cMCS, cChaoJi, ...) need ocpp_version 2.1."
        ),
    )
    supply: Literal["AC", "DC"] | None = Field(
        default=None,
        description=(
            "Whether the EVSE delivers AC (EVs charge through their on-board charger) or DC; "
            "null infers it from the connectors (CCS, CHAdeMO, ChaoJi, GB/T DC, MCS are DC)."
        ),
    )
    bidirectional: bool = Field(
        default=False,
        description="Whether the EVSE can take power back from the EV (V2X, block Q).",
    )

    @property
    def supply_kind(self) -> Literal["AC", "DC"]:
        if self.supply is not None:
            return self.supply
        return "DC" if set(self.connectors) <= _DC_CONNECTORS else "AC"


_DC_CONNECTORS = frozenset(
    {"cCCS1", "cCCS2", "cG105", "cChaoJi", "cGBT-DC", "cMCS", "cUltraChaoJi", "cLECCS"}
)


class LogUploadSettings(BaseModel):
    """How the stations' log uploads go (GetLog, N01); simulated, no traffic leaves the
    machine."""

    model_config = MODEL_CONFIG

    duration_s: float = Field(
        default=30.0,
        ge=0,
        description="Simulated seconds one attempt to upload a log takes.",
    )
    failure_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of upload attempts (0..1) that fail; which ones is drawn from the station, "
            "the requestId and the attempt, so a run is reproducible. A failed attempt is "
            "retried as GetLog's retries and retryInterval say, then reported UploadFailure."
        ),
    )


class PaymentTerminalSettings(BaseModel):
    """The payment terminal of every station (OCPP 2.1, C17-C22): drivers may pay by card
    (their share is `ev_fleet.payment`); a 2.0.1 station has no terminal and ignores it."""

    model_config = MODEL_CONFIG

    authorization_amount: float = Field(
        default=50.0,
        gt=0,
        description=(
            "PaymentCtrlr.AuthorizationAmount: the amount held on a credit or debit card, in "
            "the tariff's currency; the transaction's maximum cost. A card is only taken where "
            "a tariff prices the session."
        ),
    )
    decline_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of card payments (0..1) the payment service provider declines.",
    )
    settlement_failure_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of settlements (0..1) that fail: NotifySettlement status Failed (C22).",
    )


class BatterySwapSettings(BaseModel):
    """A battery-swap station (OCPP 2.1 block S): slots holding packs that charge from the
    site; swap EVs of the catalogue come to exchange their depleted pack for a charged one."""

    model_config = MODEL_CONFIG

    slots: int = Field(
        default=4,
        ge=1,
        le=64,
        description=(
            "Slots of every swap station; each slot is one EVSE (batteryData.evseId), and "
            "stations.evses is made from them (leave it unset)."
        ),
    )
    packs: int = Field(
        default=3,
        ge=0,
        description=(
            "Slots that hold a pack at the start; the others are empty. Swapping In-Out needs "
            "an empty slot for the depleted pack, so at most slots - 1 is useful."
        ),
    )
    slot_power_kw: float = Field(
        default=20.0, gt=0, description="Power at which one slot charges its pack, in kW."
    )
    pack_capacity_kwh: float = Field(
        default=75.0, gt=0, description="Usable energy of the station's own packs, in kWh."
    )
    pack_soc: float = Field(
        default=0.9, ge=0, le=1, description="State of charge (0..1) of the packs at the start."
    )
    pack_soh_percent: float = Field(
        default=96.0, ge=0, le=100, description="State of health of the packs, in percent."
    )
    max_soc: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="The slots stop charging a pack at this state of charge (0..1).",
    )
    ready_soc: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description=(
            "A pack at this state of charge (0..1) or above is one the station gives out; "
            "without one, swaps are refused (RequestBatterySwap Rejected, NoBatteryAvailable)."
        ),
    )
    take_out_s: float = Field(
        default=30.0,
        gt=0,
        description="Simulated seconds from BatteryIn until the driver takes the charged pack.",
    )
    out_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Simulated seconds the station offers the charged pack before it reports "
            "BatteryOutTimeout and takes the pack back into its slot."
        ),
    )
    no_take_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of drivers (0..1) who leave without taking the offered pack.",
    )
    charging_id_token: str = Field(
        default="",
        max_length=36,
        description=(
            "BatterySwapCtrlr.IdToken: the IdToken (type Central) of the transactions in which "
            "the slots charge packs; empty makes them NoAuthorization transactions."
        ),
    )

    @model_validator(mode="after")
    def _packs_fit(self) -> Self:
        problems: list[tuple[Loc, str, Any]] = []
        if self.packs > self.slots:
            problems.append(
                (("packs",), f"{self.packs} packs do not fit in {self.slots} slots", self.packs)
            )
        if self.ready_soc > self.max_soc:
            problems.append(
                (
                    ("ready_soc",),
                    f"ready_soc {self.ready_soc:g} is above max_soc {self.max_soc:g}: no pack "
                    "would ever be ready",
                    self.ready_soc,
                )
            )
        if problems:
            raise invalid_fields(problems)
        return self


class StationsSettings(BaseModel):
    """The stations of the fleet: how many, their ids, what they report and how they behave."""

    model_config = MODEL_CONFIG

    count: int = Field(ge=1, description="Number of stations in the fleet.")
    first_index: int = Field(
        default=1, ge=0, description="Index of the first station; the others follow in order."
    )
    id_pattern: str = Field(
        default="CP{index:05d}",
        description=(
            "Python format string for the station id (the last path segment of the connection "
            "URL). It must contain {index}, and the ids it makes must differ, be at most 48 "
            "characters, and use only letters, digits and * - _ = : + @ ."
        ),
    )
    vendor: str = Field(
        default="fleetsim",
        max_length=50,
        description="chargingStation.vendorName in BootNotification (at most 50 characters).",
    )
    model: str = Field(
        default="virtual-ac-22",
        max_length=20,
        description="chargingStation.model in BootNotification (at most 20 characters).",
    )
    firmware_version: str = Field(
        default_factory=_default_firmware_version,
        max_length=50,
        description=(
            "chargingStation.firmwareVersion in BootNotification (at most 50 characters); "
            "defaults to fleetsim's own version."
        ),
    )
    ramp_up_per_s: float = Field(
        default=100.0,
        gt=0,
        description=(
            "Stations that start connecting per wall second, so that a large fleet does not hit "
            "the CSMS with every handshake at once."
        ),
    )
    heartbeat_interval_s: int = Field(
        default=300,
        ge=1,
        description=(
            "Simulated seconds between Heartbeats until the CSMS sets an interval in its "
            "BootNotification response."
        ),
    )
    meter_interval_s: int = Field(
        default=60,
        ge=1,
        description=(
            "Simulated seconds between meter values during a transaction "
            "(SampledDataCtrlr.TxUpdatedInterval)."
        ),
    )
    tx_start_points: tuple[TxStartPoint, ...] = Field(
        default=("EVConnected", "Authorized"),
        min_length=1,
        description=(
            "TxCtrlr.TxStartPoint: the events that start a transaction; the first of them to "
            "happen starts it."
        ),
    )
    connector_status_report: ConnectorStatusReport = Field(
        default="status_notification",
        description=(
            "How connector status changes reach the CSMS: status_notification "
            "(StatusNotification), notify_event (NotifyEvent on AvailabilityState) or both."
        ),
    )
    evses: tuple[EvseSpec, ...] = Field(
        default=(EvseSpec(),),
        min_length=1,
        description="The EVSEs of every station, numbered from 1 in this order.",
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Device-model values every station starts with, by Component.Variable or "
            "Component.Variable[Instance] (e.g. OCPPCommCtrlr.HeartbeatInterval: '60', "
            "DeviceDataCtrlr.ItemsPerMessage[GetReport]: '20'): any variable the CSMS may "
            "set, and the read-only ones the station acts on."
        ),
    )
    firmware: FirmwareSettings = Field(
        default=FirmwareSettings(),
        description=(
            "How firmware updates go on the stations: step durations and failure shares (L01-L04)."
        ),
    )
    log_upload: LogUploadSettings = Field(
        default=LogUploadSettings(),
        description="How long the stations' simulated log uploads take and how often they fail.",
    )
    payment_terminal: PaymentTerminalSettings | None = Field(
        default=None,
        description=(
            "A payment terminal on every station (OCPP 2.1 ad hoc payment, C17-C22); null: none."
        ),
    )
    time_zone: str = Field(
        default="UTC",
        description=(
            "The IANA time zone of the stations' wall clock (e.g. Europe/Berlin): a tariff's "
            "times of day, days of the week and dates are local time there (OCPP 2.1 "
            "TariffConditionsType), as is the embedded CSMS's check of the costs. Timestamps "
            "stay UTC."
        ),
    )

    battery_swap: BatterySwapSettings | None = Field(
        default=None,
        description=(
            "Makes every station a battery-swap station (OCPP 2.1 only): its EVSEs are the "
            "slots, swap EVs come to exchange packs (BatterySwap, RequestBatterySwap, S01-S04)."
        ),
    )

    @model_validator(mode="after")
    def _swap_slots_are_the_evses(self) -> Self:
        # Compared with the default rather than asked whether it was set: a scenario dumped
        # and validated again (command-line overrides) carries the default evses.
        if self.battery_swap is not None and self.evses != (EvseSpec(),):
            raise invalid_fields(
                [
                    (
                        ("evses",),
                        "a battery-swap station's EVSEs are its slots: set "
                        "battery_swap.slots and battery_swap.slot_power_kw instead of evses",
                        None,
                    )
                ]
            )
        return self

    @property
    def evse_specs(self) -> tuple[EvseSpec, ...]:
        """The EVSEs every station has: `evses`, or one DC EVSE per slot of a swap station."""
        swap = self.battery_swap
        if swap is None:
            return self.evses
        slot = EvseSpec(
            max_power_w=swap.slot_power_kw * 1000.0, connectors=("Undetermined",), supply="DC"
        )
        return (slot,) * swap.slots

    @field_validator("id_pattern")
    @classmethod
    def _id_pattern_formats(cls, pattern: str) -> str:
        return check_index_pattern(pattern, "CP{index:05d}", "station ids")

    @field_validator("time_zone")
    @classmethod
    def _time_zone_is_known(cls, name: str) -> str:
        try:
            station_zone(name)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return name

    @field_validator("tx_start_points")
    @classmethod
    def _no_repeated_start_point(cls, points: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({point for point in points if points.count(point) > 1})
        if repeated:
            raise invalid(f"{', '.join(repeated)} is listed more than once")
        return points

    @model_validator(mode="after")
    def _ids_are_usable(self) -> Self:
        """Every station id must be distinct and fit in a URL path segment and in OCPP-J.

        A pattern that writes the index as an integer (`CP{index:05d}`) is judged from a few
        ids, whatever the fleet's size; any other is judged by formatting every id.
        """
        problems: list[str] = []
        texts = survey_index_pattern(self.id_pattern, self.station_indices)
        characters, longest, duplicate = texts.characters, texts.longest, texts.duplicate
        bad = sorted(c for c in characters if not _STATION_ID_CHARS.fullmatch(c))
        if bad:
            shown = " ".join(repr(c) for c in bad)
            problems.append(f"station ids would contain {shown}; {_STATION_ID_HINT}")
        if not longest:
            problems.append("station ids would be empty")
        if len(longest) > _STATION_ID_MAX_CHARS:
            problems.append(
                f"station id {longest!r} has {len(longest)} characters; OCPP-J allows at "
                f"most {_STATION_ID_MAX_CHARS}"
            )
        if duplicate is not None:
            first, second, station_id = duplicate
            problems.append(
                f"stations {first} and {second} would both be {station_id!r}; write the index "
                "so that every number shows, e.g. {index:05d}"
            )
        if problems:
            raise invalid_fields(
                (("id_pattern",), problem, self.id_pattern) for problem in problems
            )
        return self

    @property
    def station_indices(self) -> range:
        """The index of every station, in the order they start."""
        return range(self.first_index, self.first_index + self.count)

    def station_id(self, index: int) -> str:
        """The id of the station with this index (one of `station_indices`)."""
        if index not in self.station_indices:
            raise ValueError(
                f"station index {index} is outside {self.first_index}.."
                f"{self.first_index + self.count - 1}"
            )
        return self.id_pattern.format(index=index)
