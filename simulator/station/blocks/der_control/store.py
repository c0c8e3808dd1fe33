"""The DER controls one station holds, and which of them is in force (R04).

Per control type, a scheduled control between its startTime and startTime + duration overrides
the default controls; among several candidates the lowest `priority` number wins (0 is the
highest priority), and among equal priorities the control set last.  A control outranked by
another of the same type and kind (default or scheduled) whose time overlaps its own is
superseded: it stays stored and is reported with isSuperseded, but is never executed.

The store is created the first time the CSMS sets a control: most stations never get one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from ...core import Block, StationCore

__all__ = [
    "DEFAULT_ONLY",
    "STATE_KEY",
    "DerControls",
    "Stored",
    "Trip",
    "controls_of",
    "epoch_s",
    "peek_controls",
    "setting_field",
]

#: The field of SetDERControlRequest that carries each control type's setting; every other
#: type is a curve (`curve`).
_FIELDS: Mapping[str, str] = {
    "EnterService": "enterService",
    "FixedPFAbsorb": "fixedPFAbsorb",
    "FixedPFInject": "fixedPFInject",
    "FixedVar": "fixedVar",
    "FreqDroop": "freqDroop",
    "Gradients": "gradient",
    "LimitMaxDischarge": "limitMaxDischarge",
}
#: Settings without startTime and duration: they can only be defaults.
DEFAULT_ONLY: frozenset[str] = frozenset({"EnterService", "Gradients"})


def setting_field(control_type: str) -> str:
    """The request field that holds the setting of `control_type`."""
    return _FIELDS.get(control_type, "curve")


def epoch_s(text: str) -> float:
    """Seconds since the epoch of an OCPP dateTime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class Stored:
    """One control as the CSMS set it, with its window in simulated seconds."""

    control_id: str
    control_type: str
    is_default: bool
    #: The setting as the CSMS sent it (a DERCurveType, FreqDroopType, ...).
    setting: Mapping[str, Any]
    priority: int
    start_s: float
    end_s: float
    #: Order of arrival: among equal priorities the later control wins.
    seq: int

    def active_at(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    def overlaps(self, other: Stored) -> bool:
        return self.start_s < other.end_s and other.start_s < self.end_s

    def outranks(self, other: Stored) -> bool:
        return (self.priority, -self.seq) < (other.priority, -other.seq)


@dataclass(frozen=True, slots=True)
class Trip:
    """The output stopped because the grid stayed beyond a trip curve."""

    control_id: str
    #: Momentary cessation: resumes as soon as the grid is back, without EnterService.
    ceasing: bool


class DerControls:
    """A station's DER controls by controlId, and what acting on them left behind."""

    __slots__ = (
        "_seq",
        "controls",
        "ramp_from_s",
        "ramp_s",
        "resume_at_s",
        "started",
        "timer",
        "timer_at_s",
        "trip",
    )

    def __init__(self) -> None:
        self.controls: dict[str, Stored] = {}
        self._seq = 0
        #: Scheduled controls whose start was announced (NotifyDERStartStop started=true).
        self.started: set[str] = set()
        self.trip: Trip | None = None
        #: When a tripped station re-enters service (inf: not yet known).
        self.resume_at_s = math.inf
        #: The enter-service ramp after a trip: from when, over how many seconds.
        self.ramp_from_s = -math.inf
        self.ramp_s = 0.0
        #: The timer that wakes the block at the next scheduled change, and when.
        self.timer: trio.CancelScope | None = None
        self.timer_at_s = math.inf

    def __len__(self) -> int:
        return len(self.controls)

    def __iter__(self) -> Iterator[Stored]:
        return iter(self.controls.values())

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def superseded(self, control: Stored) -> bool:
        """True when another control of its type and kind outranks it over an overlapping
        time."""
        return any(
            other is not control
            and other.control_type == control.control_type
            and other.is_default == control.is_default
            and other.overlaps(control)
            and other.outranks(control)
            for other in self.controls.values()
        )

    def put(self, control: Stored) -> list[str]:
        """Store `control` (replacing one of the same id) and return the ids of the controls
        it supersedes that were not superseded before."""
        before = {c.control_id for c in self.controls.values() if not self.superseded(c)}
        self.controls.pop(control.control_id, None)
        self.controls[control.control_id] = control
        return [
            c.control_id
            for c in self.controls.values()
            if c.control_id in before and c is not control and self.superseded(c)
        ]

    def in_force(self, control_type: str, t_s: float) -> Stored | None:
        """The control of `control_type` the station executes at `t_s`, if any."""
        best: Stored | None = None
        for control in self.controls.values():
            if control.control_type != control_type or not control.active_at(t_s):
                continue
            if (
                best is None
                or (best.is_default and not control.is_default)
                or (best.is_default == control.is_default and control.outranks(best))
            ):
                best = control
        return best

    def matching(
        self, is_default: bool | None, control_type: str | None, control_id: str | None
    ) -> list[Stored]:
        """The controls a Get or Clear request names: by id, else by type, else all; of the
        kind (default or scheduled) it names, when it names one."""
        if control_id is not None:
            found = self.controls.get(control_id)
            candidates: Iterable[Stored] = () if found is None else (found,)
        else:
            candidates = (
                c
                for c in self.controls.values()
                if control_type is None or c.control_type == control_type
            )
        return [c for c in candidates if is_default is None or c.is_default == is_default]

    def remove(self, controls: Iterable[Stored]) -> None:
        for control in controls:
            self.controls.pop(control.control_id, None)

    def next_boundary_after(self, t_s: float) -> float:
        """The next moment a scheduled control starts or ends after `t_s` (inf if none)."""
        upcoming = math.inf
        for control in self.controls.values():
            if control.is_default:
                continue
            for edge_s in (control.start_s, control.end_s):
                if t_s < edge_s < upcoming:
                    upcoming = edge_s
        return upcoming


#: The key of the block's per-station state: the same name as the assembled block.
STATE_KEY: Block[DerControls] = Block(letter="R", name="der_control", new_state=DerControls)


def controls_of(station: StationCore) -> DerControls:
    """The station's DER controls, made on first use."""
    return station.block_state(STATE_KEY)


def peek_controls(station: StationCore) -> DerControls | None:
    """The station's DER controls if it ever held any (reading creates nothing)."""
    return station.peek_block_state(STATE_KEY)
