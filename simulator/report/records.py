"""The records a run hands to its report files: EV sessions, site power steps and grid events.

They are plain frozen values, collected while the run goes and written once at its end, so the
writers in `files.py` need nothing from the stations, the grid model or trio, and a test can
build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GridEventMark", "SessionRecord", "SitePowerSample"]


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
