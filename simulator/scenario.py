"""The scenario file: what a run simulates, as pydantic models, and how YAML becomes one.

A scenario is the whole input of a run apart from a few command-line flags, so everything here is
validated before a single station connects: a typo found after ten thousand stations have booted
wastes a load test.  Every model forbids unknown keys (a misspelt optional key would otherwise be
ignored silently) and is frozen, because the fleet shares one scenario across all stations.

Errors point at the file, the line and the field: `load_scenario` parses the YAML once, keeps the
node tree for its line marks, and maps each pydantic error location (`stations.evses[1].phases`)
back to the line that holds it.  An unknown key is reported on its own line; a missing key, or a
problem with a whole section, on the line of the key that opens the section, because that is
where a reader adds or fixes it.

The field descriptions are the reference documentation: `fleetsim schema` prints them as a JSON
Schema that editors use for completion and hover help.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib.metadata
import os
import re
import string
import types
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Self, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .ocpp import OcppVersion

__all__ = [
    "ConnectorStatusReport",
    "ConnectorType",
    "CsmsSettings",
    "DerEventSpec",
    "EmbeddedCsmsSettings",
    "EvFleetSettings",
    "EvseSpec",
    "FrequencyEventSpec",
    "GridSettings",
    "IdTokenPool",
    "Range",
    "Scenario",
    "ScenarioError",
    "SiteKind",
    "SiteSpec",
    "SocRange",
    "StationsSettings",
    "TxStartPoint",
    "load_scenario",
    "scenario_json_schema",
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
_OCPP_201_CONNECTOR_TYPES = frozenset(get_args(ConnectorType)[:22])

#: IdTokenEnumType of OCPP 2.0.1, a closed enum; OCPP 2.1 accepts any string of up to 20 chars.
_OCPP_201_ID_TOKEN_TYPES = frozenset(
    {
        "Central",
        "eMAID",
        "ISO14443",
        "ISO15693",
        "KeyCode",
        "Local",
        "MacAddress",
        "NoAuthorization",
    }
)
#: IdTokenType.idToken maxLength in each version's schemas.
_ID_TOKEN_MAX_CHARS: dict[str, int] = {"2.1": 255, "2.0.1": 36}

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


#: A location inside a scenario, as pydantic reports it: ("stations", "evses", 1, "phases").
Loc = tuple[str | int, ...]


class ScenarioError(Exception):
    """A scenario cannot be used; `problems` holds one line per problem, ready to print.

    Each line names the file and line (or the command line) and the field, then says what is
    wrong: `scenarios/x.yaml:14 stations.count: Input should be greater than or equal to 1`.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


# --- helpers for validators -------------------------------------------------------------------


def _reason(message: str) -> PydanticCustomError:
    """An error whose text is `message` as written (braces included, no "Value error," prefix)."""
    return PydanticCustomError("invalid_scenario", "{reason}", {"reason": message})


def _problems(problems: Iterable[tuple[Loc, str, Any]]) -> ValidationError:
    """Errors at locations inside the model being validated, as (loc, message, input).

    A model validator that checks several fields together raises this so that each error
    points at the field to change, not at the whole section.
    """
    return ValidationError.from_exception_data(
        "Scenario",
        [
            InitErrorDetails(type=_reason(message), loc=loc, input=value)
            for loc, message, value in problems
        ],
    )


def _check_index_pattern(pattern: str, example: str, things: str) -> str:
    """Reject a pattern that cannot number things: it must use `{index}` and nothing else."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise _reason(
            f"{pattern!r} is not a valid format string ({exc}); write a literal brace as {{{{ or "
            f"}}}}, e.g. {example!r}"
        ) from exc
    # "{index.real}" and "{index[0]}" name the field "index" too; formatting judges them below.
    names = {re.split(r"[.\[]", name, maxsplit=1)[0] for name in fields}
    if "index" not in names:
        raise _reason(
            f"{pattern!r} must contain {{index}} so that the {things} differ, e.g. {example!r}"
        )
    others = sorted(name for name in names if name != "index")
    if others:
        shown = ", ".join("{" + name + "}" for name in others)
        raise _reason(f"{pattern!r} may only use {{index}}, not {shown}")
    try:
        pattern.format(index=1)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise _reason(
            f"{pattern!r} does not format a number ({exc}); write it as {{index}} or a number "
            f"format such as {{index:05d}}"
        ) from exc
    return pattern


def _first_duplicate(pattern: str, indices: range) -> tuple[int, int, str] | None:
    """Two indices that the pattern maps to the same text, if any."""
    seen: dict[str, int] = {}
    for index in indices:
        text = pattern.format(index=index)
        if text in seen:
            return seen[text], index, text
        seen[text] = index
    return None


# --- models -----------------------------------------------------------------------------------

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Range(BaseModel):
    """A closed interval; the session model draws values uniformly from it."""

    model_config = _MODEL_CONFIG

    min: float = Field(gt=0, description="Smallest value drawn.")
    max: float = Field(gt=0, description="Largest value drawn; at least `min`.")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min > self.max:
            raise _problems(
                [(("max",), f"max ({self.max:g}) is below min ({self.min:g}); swap them", self.max)]
            )
        return self


class SocRange(Range):
    """A closed interval of state of charge, as a fraction of the battery (0..1)."""

    min: float = Field(gt=0, le=1, description="Smallest state of charge drawn (0..1).")
    max: float = Field(
        gt=0, le=1, description="Largest state of charge drawn (0..1); at least min."
    )


class CsmsSettings(BaseModel):
    """Where the stations connect, how they authenticate, and how patient they are."""

    model_config = _MODEL_CONFIG

    url: str | None = Field(
        default=None,
        description=(
            "WebSocket URL of the CSMS, ws:// or wss://; each station connects to "
            "{url}/{station id}. Leave it out to run against fleetsim's embedded CSMS on "
            "loopback."
        ),
    )
    password: str | None = Field(
        default=None,
        repr=False,
        description=(
            "HTTP Basic password sent by every station (security profile 1 over ws://, 2 over "
            "wss://); the user name is the station id. Prefer password_env for real secrets."
        ),
    )
    password_env: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Name of an environment variable that holds the HTTP Basic password. It is read when "
            "the run starts, so the secret stays out of the scenario file. Give either this or "
            "password, not both."
        ),
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Wall seconds a station waits for the TCP, TLS and WebSocket handshakes.",
    )
    call_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Wall seconds a station waits for the answer to a request it sent.",
    )
    validate_outgoing: bool = Field(
        default=True,
        description=(
            "Check every message the stations send against the OCPP JSON schema before sending "
            "it. Catches simulator bugs; switch it off in very large load runs to save CPU."
        ),
    )
    retry_backoff_wait_minimum_s: float = Field(
        default=3.0,
        ge=0,
        description=(
            "OCPP RetryBackOffWaitMinimum: simulated seconds to wait before the first reconnect "
            "attempt."
        ),
    )
    retry_backoff_random_range_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "OCPP RetryBackOffRandomRange: up to this many simulated seconds of random extra "
            "wait, so that a fleet does not reconnect in one burst."
        ),
    )
    retry_backoff_repeat_times: int = Field(
        default=3,
        ge=0,
        description=(
            "OCPP RetryBackOffRepeatTimes: how many times the wait doubles before it stays the "
            "same."
        ),
    )

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            better = {"http": "ws", "https": "wss"}.get(parts.scheme.lower())
            hint = (
                f"; did you mean {better}://{url.split('://', 1)[1]}?"
                if better and "://" in url
                else ""
            )
            raise _reason(
                f"{url!r} must start with ws:// or wss://, because OCPP-J runs over WebSocket"
                + hint
            )
        if not parts.hostname:
            raise _reason(f"{url!r} has no host; write it as {parts.scheme}://host:port/path")
        if parts.query or parts.fragment:
            raise _reason(
                f"{url!r} has a query or fragment; stations append /<station id> to the URL, so "
                "it must end with the path"
            )
        return url

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        if self.password is not None and self.password_env is not None:
            raise _problems(
                [
                    (
                        ("password_env",),
                        "give either password or password_env, not both",
                        self.password_env,
                    )
                ]
            )
        return self


class EvseSpec(BaseModel):
    """One EVSE of each station: its power limit, phases and connectors."""

    model_config = _MODEL_CONFIG

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


class StationsSettings(BaseModel):
    """The stations of the fleet: how many, their ids, what they report and how they behave."""

    model_config = _MODEL_CONFIG

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

    @field_validator("id_pattern")
    @classmethod
    def _id_pattern_formats(cls, pattern: str) -> str:
        return _check_index_pattern(pattern, "CP{index:05d}", "station ids")

    @field_validator("tx_start_points")
    @classmethod
    def _no_repeated_start_point(cls, points: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({point for point in points if points.count(point) > 1})
        if repeated:
            raise _reason(f"{', '.join(repeated)} is listed more than once")
        return points

    @model_validator(mode="after")
    def _ids_are_usable(self) -> Self:
        """Every station id must be distinct and fit in a URL path segment and in OCPP-J.

        This formats every id once (well under a second per million stations), which is cheaper than
        reasoning about what an arbitrary format spec can produce.
        """
        problems: list[str] = []
        first_index_of: dict[str, int] = {}
        characters: set[str] = set()
        duplicate: tuple[int, int, str] | None = None
        for index in self.station_indices:
            station_id = self.id_pattern.format(index=index)
            if station_id in first_index_of:
                duplicate = duplicate or (first_index_of[station_id], index, station_id)
            else:
                first_index_of[station_id] = index
            characters.update(station_id)
        longest = max(first_index_of, key=len)
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
            raise _problems((("id_pattern",), problem, self.id_pattern) for problem in problems)
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


class IdTokenPool(BaseModel):
    """The IdTokens drivers present; each session draws one of them."""

    model_config = _MODEL_CONFIG

    pattern: str = Field(
        default="TOKEN{index:05d}",
        description="Python format string for the idToken value; must contain {index}.",
    )
    count: int = Field(
        default=1000, ge=1, description="Number of distinct tokens, numbered from 1."
    )
    type: str = Field(
        default="ISO14443",
        min_length=1,
        max_length=20,
        description=(
            "IdToken type (ISO14443, ISO15693, eMAID, KeyCode, Local, Central, MacAddress, ...); "
            "OCPP 2.0.1 accepts only its enum values."
        ),
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_formats(cls, pattern: str) -> str:
        return _check_index_pattern(pattern, "TOKEN{index:05d}", "tokens")

    @model_validator(mode="after")
    def _tokens_differ(self) -> Self:
        duplicate = _first_duplicate(self.pattern, self.indices)
        if duplicate is not None:
            first, second, token = duplicate
            raise _problems(
                [
                    (
                        ("pattern",),
                        f"tokens {first} and {second} would both be {token!r}; write the "
                        "index so that every number shows, e.g. {index:05d}",
                        self.pattern,
                    )
                ]
            )
        return self

    @property
    def indices(self) -> range:
        """The index of every token: 1 to `count`."""
        return range(1, self.count + 1)

    def id_token(self, index: int) -> str:
        """The idToken value with this index (one of `indices`)."""
        if index not in self.indices:
            raise ValueError(f"token index {index} is outside 1..{self.count}")
        return self.pattern.format(index=index)


SiteKind = Literal["depot", "workplace", "public", "highway"]


class SiteSpec(BaseModel):
    """A site: stations behind one grid connection, with the arrivals of its kind of place."""

    model_config = _MODEL_CONFIG

    name: str = Field(
        min_length=1, max_length=40, description="Site name, used in reports and site_power.csv."
    )
    kind: SiteKind = Field(
        default="public",
        description=(
            "Kind of place, which sets the time-of-day arrival profile and the EVs' needs: depot "
            "(overnight fleets), workplace (morning arrivals, all-day stays), public (through "
            "the day, short stays), highway (DC, quick top-ups)."
        ),
    )
    stations: int | None = Field(
        default=None,
        ge=1,
        description=(
            "How many of the fleet's stations (taken in id order) are at this site; null on the "
            "last site takes the rest."
        ),
    )
    capacity_kw: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Grid connection limit of the site in kW, shared by its charging EVs (local load "
            "balancing); null is unlimited."
        ),
    )
    arrivals_per_evse_per_day: float = Field(
        default=2.0,
        ge=0,
        description=(
            "Mean EV arrivals per EVSE per simulated day, spread over the day by the site kind's "
            "profile; 0 means EVs come only on remote starts."
        ),
    )
    utc_offset_h: float = Field(
        default=0.0,
        ge=-14,
        le=14,
        description="Local time of the site as an offset from UTC in hours, for the profile.",
    )
    dwell_s: Range | None = Field(
        default=None,
        description=(
            "Overrides how long EVs stay, in simulated seconds (uniform); null uses the kind's."
        ),
    )
    soc_start: SocRange | None = Field(
        default=None,
        description="Overrides the state of charge on arrival (0..1); null uses the kind's.",
    )
    target_soc: SocRange | None = Field(
        default=None,
        description="Overrides the state of charge drivers want (0..1); null uses the kind's.",
    )
    loop_idle_s: Range | None = Field(
        default=None,
        description=(
            "Load-test loop: every EVSE serves EVs back to back, the next one arriving this "
            "many simulated seconds (uniform) after the last one left; needs dwell_s, and "
            "replaces arrivals_per_evse_per_day."
        ),
    )

    @model_validator(mode="after")
    def _loop_has_a_dwell(self) -> Self:
        if self.loop_idle_s is not None and self.dwell_s is None:
            raise _problems(
                [
                    (
                        ("dwell_s",),
                        "a site with loop_idle_s needs dwell_s: how long each EV stays",
                        None,
                    )
                ]
            )
        return self


class EvFleetSettings(BaseModel):
    """The EVs that come: which models, how drivers identify, what they ask for."""

    model_config = _MODEL_CONFIG

    models: dict[str, float] | None = Field(
        default=None,
        description=(
            "EV models from the catalogue (fleetsim ev-models lists them) and their shares of "
            "arrivals; shares are relative weights. null: every car of the catalogue, equally."
        ),
    )
    extra_models: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Models to add to the catalogue, or fields to change on one of its models, by name: "
            "usable_battery_wh, max_ac_w, ac_phases, max_dc_w, dc_curve, iso15118_20, "
            "bidirectional, max_discharge_w, ..."
        ),
    )
    id_token_first_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description=(
            "Share of sessions (0..1) in which the driver presents the IdToken before plugging "
            "in (use case E03); in the others the EV is plugged in first (E02)."
        ),
    )
    id_tokens: IdTokenPool = Field(
        default=IdTokenPool(), description="The IdTokens drivers present."
    )
    iso15118_share: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description=(
            "Share of ISO 15118-20 capable EVs that use it (send their charging needs); the "
            "others charge as IEC 61851 basic EVs."
        ),
    )
    min_soc: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="State of charge (0..1) below which a bidirectional EV never discharges.",
    )
    remote_start_plugin_delay_s: float | None = Field(
        default=30.0,
        ge=0,
        description=(
            "After the CSMS starts a transaction remotely on an empty EVSE, an EV plugs in after "
            "this many simulated seconds. null: no EV comes, so the station's "
            "EVConnectionTimeOut ends the attempt."
        ),
    )

    @model_validator(mode="after")
    def _models_exist(self) -> Self:
        """Every model named is in the catalogue (with `extra_models` applied), and the
        additions and changes are valid EV models."""
        from ev_models import CatalogueError, load_catalogue

        try:
            catalogue = load_catalogue(self.extra_models or None)
        except CatalogueError as exc:
            raise _problems([(("extra_models",), str(exc), None)]) from None
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        for name, share in (self.models or {}).items():
            if name not in catalogue:
                close = difflib.get_close_matches(name, catalogue, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                problems.append(
                    (
                        ("models", name),
                        f"no EV model {name!r} in the catalogue{hint} (fleetsim ev-models "
                        "lists them; add one under extra_models)",
                        name,
                    )
                )
            elif not share > 0:
                problems.append(
                    (("models", name), f"the share must be a positive number, got {share}", share)
                )
        if self.models is not None and not self.models:
            problems.append((("models",), "name at least one model, or leave models out", None))
        if problems:
            raise _problems(problems)
        return self


class FrequencyEventSpec(BaseModel):
    """A scripted grid frequency excursion."""

    model_config = _MODEL_CONFIG

    at_s: float = Field(ge=0, description="Simulated seconds after the start when it begins.")
    duration_s: float = Field(gt=0, description="How long the frequency stays there, seconds.")
    frequency_hz: float = Field(gt=40, lt=70, description="The frequency during the event.")
    ramp_s: float = Field(default=0.0, ge=0, description="Seconds to ramp in and out.")


class DerEventSpec(BaseModel):
    """A scripted voltage or frequency excursion that stations report as a DER alarm."""

    model_config = _MODEL_CONFIG

    at_s: float = Field(ge=0, description="Simulated seconds after the start when it begins.")
    duration_s: float = Field(gt=0, description="How long it lasts, seconds.")
    kind: Literal["UnderFrequency", "OverFrequency", "UnderVoltage", "OverVoltage"] = Field(
        description="What the grid does."
    )
    value: float = Field(gt=0, description="The frequency (Hz) or voltage (V) during the event.")


class GridSettings(BaseModel):
    """The grid the stations hang on: its frequency, and scripted events."""

    model_config = _MODEL_CONFIG

    nominal_hz: Literal[50, 60] = Field(default=50, description="Nominal grid frequency.")
    sigma_hz: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Standard deviation of the frequency's random deviation; null uses the published "
            "figure for the nominal frequency's grids; 0 keeps the frequency at nominal."
        ),
    )
    time_constant_s: float | None = Field(
        default=None, gt=0, description="How fast a deviation fades, seconds; null: published."
    )
    sample_interval_s: float = Field(
        default=1.0, gt=0, description="How often the frequency is sampled, simulated seconds."
    )
    events: tuple[FrequencyEventSpec, ...] = Field(
        default=(), description="Scripted frequency excursions."
    )
    der_events: tuple[DerEventSpec, ...] = Field(
        default=(), description="Voltage and frequency excursions the stations report."
    )


class EmbeddedCsmsSettings(BaseModel):
    """What the embedded CSMS does beyond answering (it is ignored with an external CSMS)."""

    model_config = _MODEL_CONFIG

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


class Scenario(BaseModel):
    """A fleetsim scenario: the stations, the CSMS they connect to, the EVs, and the run."""

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1, description="Short name, shown in reports and metrics.")
    description: str = Field(default="", description="What the scenario exercises, for readers.")
    seed: int = Field(
        default=1,
        description=(
            "Seed of the scenario's random generator; the same seed gives the same EVs at the "
            "same simulated times."
        ),
    )
    speed: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Simulated seconds per wall second: 1 is real time, 60 runs a simulated hour in a "
            "minute. Timeouts in csms stay in wall seconds."
        ),
    )
    duration_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall seconds the run lasts; null runs until Ctrl-C.",
    )
    start: dt.datetime | None = Field(
        default=None,
        description=(
            "Simulated date and time at which the run starts, with a time zone "
            "(2026-01-15T06:00:00Z); null starts at the current time."
        ),
    )
    ocpp_version: OcppVersion = Field(
        default="2.1",
        description="OCPP version the stations speak; chooses the WebSocket subprotocol.",
    )
    csms: CsmsSettings = Field(
        default=CsmsSettings(), description="The CSMS the stations connect to."
    )
    stations: StationsSettings = Field(description="The stations of the fleet.")
    sites: tuple[SiteSpec, ...] = Field(
        default=(),
        description=(
            "Where the stations are; empty puts all stations on one public site without a "
            "capacity limit."
        ),
    )
    ev_fleet: EvFleetSettings = Field(
        default=EvFleetSettings(), description="The EVs that come to the stations."
    )
    grid: GridSettings = Field(default=GridSettings(), description="The grid and its events.")
    embedded_csms: EmbeddedCsmsSettings = Field(
        default=EmbeddedCsmsSettings(),
        description="Smart charging by the embedded CSMS (when csms.url is null).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "TCP port for the Prometheus metrics endpoint (0 picks a free port); null serves "
            "no metrics."
        ),
    )

    @model_validator(mode="after")
    def _sites_hold_the_fleet(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        names: set[str] = set()
        for number, site in enumerate(self.sites):
            if site.name in names:
                problems.append(
                    (("sites", number, "name"), f"site {site.name!r} is named twice", site.name)
                )
            names.add(site.name)
            if site.stations is None and number != len(self.sites) - 1:
                problems.append(
                    (
                        ("sites", number, "stations"),
                        "only the last site may leave stations empty (it takes the rest)",
                        None,
                    )
                )
        if self.sites and not problems:
            fixed = sum(site.stations or 0 for site in self.sites)
            count = self.stations.count
            last = self.sites[-1]
            if fixed > count:
                problems.append(
                    (
                        ("sites",),
                        f"the sites hold {fixed} stations but the fleet has {count}",
                        fixed,
                    )
                )
            elif last.stations is None and fixed >= count:
                problems.append(
                    (
                        ("sites", len(self.sites) - 1, "stations"),
                        "no station is left for the last site",
                        None,
                    )
                )
            elif last.stations is not None and fixed < count:
                problems.append(
                    (
                        ("sites",),
                        f"the sites hold {fixed} of the fleet's {count} stations; give the last "
                        "site stations: null to take the rest",
                        fixed,
                    )
                )
        if problems:
            raise _problems(problems)
        return self

    def for_block(self, block: range) -> Scenario:
        """The part of this scenario whose stations have indices in `block` (a shard): the
        same sites, each holding the stations of the block that were its own."""
        if not block:
            raise ScenarioError(
                [f"command line: the shard holds none of the {self.stations.count} stations"]
            )
        sites = []
        for site, indices in self.site_layout():
            mine = range(max(indices.start, block.start), min(indices.stop, block.stop))
            if len(mine):
                sites.append(site.model_copy(update={"stations": len(mine)}))
        data = self.model_dump()
        data["stations"]["first_index"] = block.start
        data["stations"]["count"] = len(block)
        if self.sites:
            data["sites"] = [site.model_dump() for site in sites]
        return Scenario.model_validate(data)

    def site_layout(self) -> list[tuple[SiteSpec, range]]:
        """Each site with the station indices it holds, in id order."""
        sites = self.sites or (SiteSpec(name="site"),)
        layout = []
        first = self.stations.first_index
        end = first + self.stations.count
        for site in sites:
            last = end if site.stations is None else first + site.stations
            layout.append((site, range(first, last)))
            first = last
        return layout

    @field_validator("start")
    @classmethod
    def _start_has_time_zone(cls, start: dt.datetime | None) -> dt.datetime | None:
        if start is not None and start.utcoffset() is None:
            raise _reason(
                f"{start.isoformat()} has no time zone; add Z for UTC "
                f"({start.isoformat()}Z) or an offset such as +01:00"
            )
        return start

    @model_validator(mode="after")
    def _fits_ocpp_version(self) -> Self:
        """Values that OCPP 2.1 allows but the chosen version's schema would reject."""
        problems: list[tuple[Loc, str, Any]] = []
        if self.ocpp_version == "2.0.1":
            for evse_number, evse in enumerate(self.stations.evses):
                for connector_number, connector in enumerate(evse.connectors):
                    if connector not in _OCPP_201_CONNECTOR_TYPES:
                        problems.append(
                            (
                                ("stations", "evses", evse_number, "connectors", connector_number),
                                f"{connector} is new in OCPP 2.1; use ocpp_version 2.1 or a "
                                "connector type of OCPP 2.0.1",
                                connector,
                            )
                        )
            token_type = self.ev_fleet.id_tokens.type
            if token_type not in _OCPP_201_ID_TOKEN_TYPES:
                problems.append(
                    (
                        ("ev_fleet", "id_tokens", "type"),
                        f"OCPP 2.0.1 has no IdToken type {token_type!r}; use one of "
                        + ", ".join(sorted(_OCPP_201_ID_TOKEN_TYPES)),
                        token_type,
                    )
                )
        tokens = self.ev_fleet.id_tokens
        limit = _ID_TOKEN_MAX_CHARS[self.ocpp_version]
        longest = max((tokens.id_token(i) for i in tokens.indices), key=len)
        if len(longest) > limit:
            problems.append(
                (
                    ("ev_fleet", "id_tokens", "pattern"),
                    f"token {longest!r} has {len(longest)} characters; OCPP "
                    f"{self.ocpp_version} allows at most {limit}",
                    tokens.pattern,
                )
            )
        if problems:
            raise _problems(problems)
        return self

    def with_overrides(
        self,
        *,
        stations: int | None = None,
        duration_s: float | None = None,
        speed: float | None = None,
        seed: int | None = None,
        ocpp_version: str | None = None,
        csms_url: str | None = None,
        metrics_port: int | None = None,
    ) -> Scenario:
        """A copy with the command-line flags that were given (not None) applied.

        The result is validated again, since an override can break a rule that spans fields
        (more stations than the id pattern can number, a connector type the other OCPP version
        lacks).  Problems raise `ScenarioError` with lines that start with "command line".
        """
        data = self.model_dump()
        top_level = {
            "duration_s": duration_s,
            "speed": speed,
            "seed": seed,
            "ocpp_version": ocpp_version,
            "metrics_port": metrics_port,
        }
        data.update({key: value for key, value in top_level.items() if value is not None})
        if stations is not None:
            data["stations"]["count"] = stations
        if csms_url is not None:
            data["csms"]["url"] = csms_url
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(
                [f"command line: {_dotted(loc)}: {message}" for loc, message in _user_errors(exc)]
            ) from exc

    def resolved_password(self) -> str | None:
        """The HTTP Basic password: csms.password, or the variable csms.password_env names."""
        if self.csms.password_env is None:
            return self.csms.password
        name = self.csms.password_env
        value = os.environ.get(name)
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise ScenarioError(
                [
                    f"csms.password_env: the environment variable {name} {state}; export it "
                    f"with the CSMS password (export {name}=...) or remove password_env"
                ]
            )
        return value


# --- JSON Schema --------------------------------------------------------------------------------


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, for editors (`fleetsim schema`)."""
    schema = Scenario.model_json_schema()
    schema["title"] = "fleetsim scenario"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# --- loading ------------------------------------------------------------------------------------


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; every problem becomes one line of a `ScenarioError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioError([f"{path}: no such file"]) from exc
    except IsADirectoryError as exc:
        raise ScenarioError([f"{path}: is a directory, not a scenario file"]) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the file: {exc.strerror}"]) from exc

    root, data, duplicates = _parse_yaml(path, text)
    if root is None:
        raise ScenarioError(
            [f"{path}: the file is empty; a scenario needs at least name and stations"]
        )
    if not isinstance(data, dict):
        raise ScenarioError(
            [
                f"{path}:{root.start_mark.line + 1} the scenario must be a mapping of keys "
                f"(name: ..., stations: ...), not a {type(data).__name__}"
            ]
        )

    problems = duplicates
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        for loc, message in _user_errors(exc):
            line = _line_of(root, loc)
            problems.append((line, f"{path}:{line} {_dotted(loc)}: {message}"))
    if problems:
        raise ScenarioError([text for _, text in sorted(problems, key=lambda p: p[0])])
    return scenario


def _parse_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any, list[tuple[int, str]]]:
    """The node tree (for line marks), the data, and the repeated keys, from one safe parse."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None, []
        # Before construction, which folds `<<` merge keys into the mapping that uses them.
        duplicates = _duplicate_keys(path, root)
        data = loader.construct_document(root)
        return root, data, duplicates
    except yaml.MarkedYAMLError as exc:
        raise ScenarioError([_yaml_problem(path, exc)]) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: invalid YAML: {exc}"]) from exc
    finally:
        loader.dispose()


def _yaml_problem(path: Path, exc: yaml.MarkedYAMLError) -> str:
    """The parser's problem at its line and column, with what it was parsing when it matters."""
    mark = exc.problem_mark or exc.context_mark
    where = (
        f"{path}:{mark.line + 1} invalid YAML at column {mark.column + 1}" if mark else str(path)
    )
    problem = exc.problem or exc.context or "cannot parse"
    if not (exc.problem and exc.context):
        return f"{where}: {problem}"
    if problem.startswith("but "):  # "expected a single document in the stream, but found ..."
        return f"{where}: {exc.context}, {problem}"
    context_mark = exc.context_mark
    if context_mark is not None and (mark is None or context_mark.line != mark.line):
        return f"{where}: {problem} ({exc.context} that starts at line {context_mark.line + 1})"
    return f"{where}: {problem} ({exc.context})"


def _duplicate_keys(path: Path, root: yaml.Node) -> list[tuple[int, str]]:
    """YAML keeps the last of two equal keys silently; a scenario author wants to hear of it."""
    problems: list[tuple[int, str]] = []
    seen_nodes: set[int] = set()

    def visit(node: yaml.Node, loc: Loc) -> None:
        if id(node) in seen_nodes:  # an alias, possibly recursive
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key.start_mark.line + 1
                if key.value in first_line:
                    problems.append(
                        (
                            line,
                            f"{path}:{line} {_dotted((*loc, key.value))}: duplicate key (first "
                            f"given at line {first_line[key.value]}); YAML keeps only the last, "
                            "so remove one",
                        )
                    )
                else:
                    first_line[key.value] = line
                visit(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for number, item in enumerate(node.value):
                visit(item, (*loc, number))

    visit(root, ())
    return problems


def _line_of(root: yaml.Node, loc: Sequence[str | int]) -> int:
    """The 1-based line to blame for an error at `loc`.

    The walk follows `loc` as far as the YAML goes.  A value reached through a key is blamed on
    the key's line (the same line for a scalar; the line that opens a section for a mapping or
    a list), so an unknown key is reported on its own line, a missing key at the key of its
    section, and an error about a whole section at the line that names it.  List items are
    blamed on their own line.
    """
    node = root
    line = root.start_mark.line
    for element in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                if isinstance(key, yaml.ScalarNode) and key.value == str(element):
                    child, line = value, key.start_mark.line
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(element, int)
            and 0 <= element < len(node.value)
        ):
            child = node.value[element]
            line = child.start_mark.line
        if child is None:
            break
        node = child
    return line + 1


def _dotted(loc: Sequence[str | int]) -> str:
    """`("stations", "evses", 1, "phases")` as `stations.evses[1].phases`."""
    text = ""
    for element in loc:
        if isinstance(element, int):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else element
    return text or "(top level)"


def _user_errors(exc: ValidationError) -> list[tuple[Loc, str]]:
    """Pydantic's errors as (location, message), worded for someone editing YAML.

    A list whose items failed is also reported by pydantic as too short (the failed items do
    not count); that second error only repeats the first, so it is dropped.
    """
    errors = exc.errors(include_url=False)
    located = [tuple(error["loc"]) for error in errors]
    kept: list[tuple[Loc, str]] = []
    for error, loc in zip(errors, located, strict=True):
        if error["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in located
        ):
            continue
        kept.append((loc, _message(error)))
    return kept


def _message(error: Any) -> str:
    """Pydantic's message, with a hint of the right key when the key is unknown.

    Sequences are tuples inside the models (so that a frozen scenario is immutable all the way
    down) but lists in YAML, so messages about them say "list".
    """
    kind = error["type"]
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        allowed = _field_names_at(loc[:-1])
        key = str(loc[-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown key; did you mean {close[0]}?"
        return "unknown key; expected one of " + ", ".join(allowed)
    if kind == "tuple_type":
        return "Input should be a list"
    if kind in ("too_short", "too_long"):
        context = error["ctx"]
        what = "List" if context["field_type"] == "Tuple" else context["field_type"]
        bound, limit = (
            ("at least", context["min_length"])
            if kind == "too_short"
            else ("at most", context["max_length"])
        )
        items = "item" if limit == 1 else "items"
        return f"{what} should have {bound} {limit} {items}, not {context['actual_length']}"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")


def _field_names_at(loc: Sequence[str | int]) -> list[str]:
    """The keys the model at `loc` accepts, by following the model classes down from Scenario."""
    annotation: Any = Scenario
    for element in loc:
        annotation = _unwrap(annotation)
        if isinstance(element, int):
            if get_origin(annotation) not in (tuple, list):
                return []
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(element)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """`X | None` as X."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
