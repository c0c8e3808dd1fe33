"""The `sites` section: stations behind one grid connection, with the arrivals of their place."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

from .base import MODEL_CONFIG, invalid_fields
from .ranges import Range, SocRange

__all__ = ["CapacityChange", "SiteKind", "SiteSpec"]

SiteKind = Literal["depot", "workplace", "public", "highway"]


class CapacityChange(BaseModel):
    """A scripted change of a site's grid connection limit (a grid operator's curtailment)."""

    model_config = MODEL_CONFIG

    at_s: float = Field(ge=0, description="Simulated seconds after the start when it changes.")
    capacity_kw: float | None = Field(
        gt=0, description="The connection limit from then on, kW; null lifts the limit."
    )
    is_grid_critical: bool = Field(
        default=False,
        description="Whether the limit is critical for the grid (NotifyChargingLimit says so).",
    )


class SiteSpec(BaseModel):
    """A site: stations behind one grid connection, with the arrivals of its kind of place."""

    model_config = MODEL_CONFIG

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
    capacity_changes: tuple[CapacityChange, ...] = Field(
        default=(),
        description=(
            "Scripted changes of capacity_kw over the run, as a grid operator curtailing the "
            "connection would make them."
        ),
    )
    external_limits: bool = Field(
        default=False,
        description=(
            "The site's energy management hands each station its share of the connection "
            "limit (by its EVSEs) as an external limit (OCPP K11-K14, source EMS): the station "
            "keeps it as a ChargingStationExternalConstraints profile, reports it with "
            "NotifyChargingLimit and ClearedChargingLimit, and its EVs draw no more.  The "
            "site then does no load balancing of its own (the limits already hold the total); "
            "false: the site shares the connection among its EVs without telling the stations."
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
            raise invalid_fields(
                [
                    (
                        ("dwell_s",),
                        "a site with loop_idle_s needs dwell_s: how long each EV stays",
                        None,
                    )
                ]
            )
        return self
