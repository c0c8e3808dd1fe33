"""The whole scenario: the top-level run settings, its sections, and the rules that span them.

The top-level keys say what the run is (name, seed, speed, duration, start, OCPP version,
metrics port); each section has its own module.  Rules that need two sections at once (sites
that hold the fleet's stations, values the chosen OCPP version allows) live here, as do the
command-line overrides and the split of a fleet into shards.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..ocpp import OcppVersion
from .base import MODEL_CONFIG, Loc, invalid, invalid_fields
from .csms import CsmsSettings
from .embedded_csms import EmbeddedCsmsSettings
from .errors import ScenarioError, dotted, user_errors
from .ev_fleet import ID_TOKEN_MAX_CHARS, OCPP_201_ID_TOKEN_TYPES, EvFleetSettings
from .faults import FaultSpec, PowerCutFault, fault_from_flag
from .grid import GridSettings
from .sites import SiteSpec
from .stations import OCPP_201_CONNECTOR_TYPES, StationsSettings
from .thresholds import ThresholdItem

if TYPE_CHECKING:
    from ..thresholds import Threshold

__all__ = ["REAL_TIME", "Scenario"]

#: What a scenario written for the embedded CSMS runs at when `--csms` points it elsewhere.
REAL_TIME: dict[str, Any] = {"speed": 1.0, "start": None}


class Scenario(BaseModel):
    """A fleetsim scenario: the stations, the CSMS they connect to, the EVs, and the run."""

    model_config = MODEL_CONFIG

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
            "minute. Timeouts in csms stay in wall seconds. Without csms.url it is for the "
            "embedded CSMS: --csms runs such a scenario at 1 unless --speed is given."
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
            "(2026-01-15T06:00:00Z); null starts at the current time. Without csms.url it is "
            "for the embedded CSMS: --csms starts such a scenario now unless --start is given."
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
        description=(
            "What the embedded CSMS does beyond answering (when csms.url is null): smart "
            "charging, V2X profiles, deauthorized transactions, reservations for drivers who "
            "book ahead, charging priorities."
        ),
    )
    faults: tuple[FaultSpec, ...] = Field(
        default=(),
        description=(
            "Faults the fleet produces on purpose, on a timeline of simulated time: drop, "
            "partition, storm, slow, stuck, clock_drift, power_cut, malformed, duplicate_id "
            "(see each kind). --drop, --drop-rate, --partition, --storm, --malformed-rate and "
            "--duplicate-id-rate add more."
        ),
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
    thresholds: tuple[ThresholdItem, ...] = Field(
        default=(),
        description=(
            "What the run must achieve for exit code 0: threshold expressions such as "
            "'p99_ms{action=BootNotification} < 500' or 'error_rate < 0.01', or mappings "
            "{expr, abort_on_fail, delay_abort_eval_s}. --threshold adds more."
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
            raise invalid_fields(problems)
        return self

    @model_validator(mode="after")
    def _someone_can_reserve(self) -> Self:
        """Drivers who reserve ahead are arrivals of a site; a scenario without any would ask
        for reservations that never happen."""
        if self.embedded_csms.reserve_share > 0 and not any(
            site.loop_idle_s is None and site.arrivals_per_evse_per_day > 0
            for site, _ in self.site_layout()
        ):
            raise invalid_fields(
                [
                    (
                        ("embedded_csms", "reserve_share"),
                        "no site has arriving drivers to reserve (every site has loop_idle_s or "
                        "arrivals_per_evse_per_day 0); give a site arrivals_per_evse_per_day, or "
                        "set reserve_share to 0",
                        self.embedded_csms.reserve_share,
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _faults_fit_the_fleet(self) -> Self:
        """A power cut names a site of the scenario; a fault's date lies after the start."""
        problems: list[tuple[Loc, str, Any]] = []
        site_names = [site.name for site, _ in self.site_layout()]
        for number, fault in enumerate(self.faults):
            if isinstance(fault, PowerCutFault) and fault.site not in site_names:
                problems.append(
                    (
                        ("faults", number, "site"),
                        f"no site is named {fault.site!r}; the sites are "
                        + ", ".join(repr(name) for name in site_names),
                        fault.site,
                    )
                )
            at = getattr(fault, "at", None)
            if (
                self.start is not None
                and isinstance(at, str)
                and "T" in at
                and fault.at_s(self.start) == 0.0
                and dt.datetime.fromisoformat(at.replace("Z", "+00:00")) < self.start
            ):
                problems.append(
                    (
                        ("faults", number, "at"),
                        f"{at} is before the scenario's start ({self.start.isoformat()}); "
                        "give a later moment or an offset such as +30m",
                        at,
                    )
                )
        if problems:
            raise invalid_fields(problems)
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
            raise invalid(
                f"{start.isoformat()} has no time zone; add Z for UTC "
                f"({start.isoformat()}Z) or an offset such as +01:00"
            )
        return start

    @model_validator(mode="after")
    def _variables_exist(self) -> Self:
        """stations.variables names variables a station has, with values they take."""
        if not self.stations.variables:
            return self
        from ..station.config import StationConfig
        from ..station.registry import RegistryError, default_registry

        problems: list[tuple[Loc, str, Any]] = []
        for name, value in self.stations.variables.items():
            config = StationConfig(ocpp_version=self.ocpp_version, variable_values=((name, value),))
            try:
                default_registry().variables(config)
            except RegistryError as exc:
                message = str(exc).removeprefix("stations.variables: ")
                problems.append((("stations", "variables", name), message, value))
        if problems:
            raise invalid_fields(problems)
        return self

    @model_validator(mode="after")
    def _fits_ocpp_version(self) -> Self:
        """Values that OCPP 2.1 allows but the chosen version's schema would reject."""
        problems: list[tuple[Loc, str, Any]] = []
        if self.ocpp_version == "2.0.1":
            if self.stations.battery_swap is not None:
                problems.append(
                    (
                        ("stations", "battery_swap"),
                        "battery swapping (BatterySwap, RequestBatterySwap) is new in OCPP 2.1 "
                        "and a 2.0.1 CSMS has no messages for it; use ocpp_version 2.1 or "
                        "remove battery_swap",
                        None,
                    )
                )
            for evse_number, evse in enumerate(self.stations.evses):
                for connector_number, connector in enumerate(evse.connectors):
                    if connector not in OCPP_201_CONNECTOR_TYPES:
                        problems.append(
                            (
                                ("stations", "evses", evse_number, "connectors", connector_number),
                                f"{connector} is new in OCPP 2.1; use ocpp_version 2.1 or a "
                                "connector type of OCPP 2.0.1",
                                connector,
                            )
                        )
            token_type = self.ev_fleet.id_tokens.type
            if token_type not in OCPP_201_ID_TOKEN_TYPES:
                problems.append(
                    (
                        ("ev_fleet", "id_tokens", "type"),
                        f"OCPP 2.0.1 has no IdToken type {token_type!r}; use one of "
                        + ", ".join(sorted(OCPP_201_ID_TOKEN_TYPES)),
                        token_type,
                    )
                )
            for carried in self.ev_fleet.id_token_types or {}:
                if carried not in OCPP_201_ID_TOKEN_TYPES:
                    problems.append(
                        (
                            ("ev_fleet", "id_token_types", carried),
                            f"{carried} tokens are new in OCPP 2.1 and a 2.0.1 CSMS would "
                            "refuse them; use ocpp_version 2.1 or drop this type",
                            carried,
                        )
                    )
        tokens = self.ev_fleet.id_tokens
        limit = ID_TOKEN_MAX_CHARS[self.ocpp_version]
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
            raise invalid_fields(problems)
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
        start: str | None = None,
        fault_flags: tuple[tuple[str, str], ...] = (),
        security_profile: int | None = None,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        password_env: str | None = None,
    ) -> Scenario:
        """A copy with the command-line flags that were given (not None) applied.

        `start` is `now` or a date and time with a time zone.  A scenario without csms.url is
        written for the embedded CSMS, whose clock is the scenario's own; pointed at another
        CSMS with `csms_url`, it runs in real time from now (speed 1, start now), so that
        timestamps match that CSMS's logs and heartbeats come as often as it asks, unless
        `speed` or `start` say otherwise.  A scenario with csms.url keeps its speed and start.

        The result is validated again, since an override can break a rule that spans fields
        (more stations than the id pattern can number, a connector type the other OCPP version
        lacks).  `fault_flags` are (flag, value) pairs of the flags that add faults
        (`faults.FAULT_FLAGS`), added to the scenario's own faults.  Problems raise
        `ScenarioError` with lines that start with "command line".
        """
        data = self.model_dump()
        top_level = {
            "duration_s": duration_s,
            "speed": speed,
            "seed": seed,
            "ocpp_version": ocpp_version,
            "metrics_port": metrics_port,
        }
        if csms_url is not None and self.csms.url is None:
            data.update(REAL_TIME)
        data.update({key: value for key, value in top_level.items() if value is not None})
        if start is not None:
            data["start"] = None if start == "now" else start
        if stations is not None:
            data["stations"]["count"] = stations
        if csms_url is not None:
            data["csms"]["url"] = csms_url
        if fault_flags:
            added = []
            for flag, value in fault_flags:
                try:
                    added.append(fault_from_flag(flag, value))
                except ValueError as exc:
                    raise ScenarioError([f"command line: {exc}"]) from None
            data["faults"] = [*data["faults"], *added]
        security = {
            "profile": security_profile,
            "ca_file": ca_file,
            "client_cert": client_cert,
            "client_key": client_key,
        }
        data["csms"]["security"].update(
            {key: value for key, value in security.items() if value is not None}
        )
        if password_env is not None:
            data["csms"].update(password=None, password_env=password_env)
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(
                [
                    f"command line: {dotted(loc)}: {message}"
                    for loc, message in user_errors(exc, type(self))
                ]
            ) from exc

    def parsed_thresholds(self) -> tuple[Threshold, ...]:
        """The scenario's thresholds, parsed (they were checked when the scenario loaded)."""
        return tuple(item.threshold() for item in self.thresholds)

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
