"""`StationObserver`: the link reports the CSMS keeps, written into the station's state.

The embedded CSMS never touches the fleet's `RunStats` or its Prometheus metrics: a quickstart
run would otherwise count every message twice, once per side.  It keeps only what tests assert
on -- broken frames, unanswerable frames and its own failures -- and drops the rest, as
`NullObserver` does.
"""

from __future__ import annotations

import logging

from ..stats import NullObserver
from .state import StationState

__all__ = ["StationObserver"]

_log = logging.getLogger(__name__)


class StationObserver(NullObserver):
    """Counts one station's violations in its `StationState`.

    The link names its reports from a station's point of view (`csms_violation`); on this side
    the peer that broke the rules is the station.
    """

    def __init__(self, station: StationState) -> None:
        self.station = station

    def csms_violation(self, action: str | None, code: str) -> None:
        self.station.record_violation(action, code)

    def frame_dropped(self, reason: str) -> None:
        self.station.frames_dropped += 1

    def malformed_frame(self, kind: str) -> None:
        self.station.malformed_frames[kind] += 1

    def internal_error(self, error: BaseException) -> None:
        self.station.internal_errors += 1
        _log.warning(
            "embedded CSMS failed to answer station %s: %r", self.station.station_id, error
        )
