"""The records a run hands to its report files: EV sessions, site power steps and grid events.

They are plain frozen values, collected while the run goes and written once at its end, so the
writers in `files.py` need nothing from the stations, the grid model or trio, and a test can
build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GridEventMark", "RunFrame", "SessionRecord", "SiteFacts", "SitePowerSample"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One EV visit to one EVSE, from plug-in to departure.

    Times are text already (RFC 3339 UTC with milliseconds, simulated time), as the station
    stamped them in its TransactionEvents, so the CSV agrees with what the CSMS received.
    """

    station_id: str
    evse_id: int
    site: str
    ev_model: str
    arrival: str
    departure: str
    soc_start_percent: float
    soc_end_percent: float
    #: Net energy metered into the EV (imported minus exported), Wh.
    energy_wh: float
    energy_exported_wh: float
    battery_kwh: float
    peak_kw: float


@dataclass(frozen=True, slots=True)
class SitePowerSample:
    """A site's power from `time_s` on, until the site's next sample: a step function.

    Samples are taken when something changes rather than on a fixed grid, so a quiet site costs
    nothing and a step is drawn as a step, not as a ramp between two points.
    """

    #: Simulated seconds since the run's start.
    time_s: float
    site: str
    import_w: float
    export_w: float
    frequency_hz: float


@dataclass(frozen=True, slots=True)
class GridEventMark:
    """A span to mark on the load curve, so a reader can tie a dip in power to its cause."""

    #: Simulated seconds since the run's start.
    start_s: float
    end_s: float
    #: Short text shown at the span, such as "49.8 Hz dip".
    label: str


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """What a report must know of a site besides its power: its clock and its limit."""

    name: str
    #: The site's local time as an offset from UTC, seconds (the scenario's `utc_offset_h`).
    utc_offset_s: int = 0
    #: The grid connection limit, W; None when the site has none.
    capacity_w: float | None = None


@dataclass(frozen=True, slots=True)
class RunFrame:
    """When the run began and stopped, and its sites: what bounds and labels every report.

    `end_s` is the moment the run stopped.  Whatever the record holds from that moment on is
    the stations shutting down (EVs still plugged in count as leaving, so their power drops to
    0 W): it says nothing of the sites and the reports leave it out.
    """

    start_epoch_s: float
    #: Simulated seconds from the start to the moment the run stopped.
    end_s: float
    sites: tuple[SiteFacts, ...] = ()
