"""`EvSession`: the power, SoC and energy of one EV on one EVSE, piecewise-analytic in time.

The power is a pure function of the SoC and of the inputs (power path, charging limit, V2X
setpoint, site share, droop offset).  The charging curves are step tables, so between two
SoC breakpoints the power is constant and the SoC is linear in time.  A session therefore keeps
only the state at its last *fold* (time, SoC, energies) and the power in effect since; any later
instant is one multiplication away, and the next instant at which the power can change (a curve
breakpoint, the target SoC, the minimum SoC) is solved exactly.  Nothing runs while an EV
charges steadily: the owner sleeps until `next_change_s()` and calls `on_change`, or changes an
input, which folds the state up to that instant first.

Sign convention: grid-side power, positive when the EV imports, negative when it exports.
Battery energy is grid import times the efficiency when charging, and grid export is battery
energy times the efficiency when discharging.

Two modes:

* Without a setpoint the EV charges to `target_soc`: its import is the smallest of the curve
  at the present SoC, the EVSE rating, the charging limit and the site share, and 0 once the
  target is reached.  It never exports in this mode: letting droop push a charge-to-target EV
  into export would make it oscillate around its target.
* With a setpoint (V2X) the charge-to-target logic is off: a positive setpoint imports (capped
  as above) until the battery is full, a negative one exports at min(|setpoint|,
  max_discharge_w, EVSE rating, |limit|) if the model is bidirectional, stopping exactly at
  `min_soc`.

The droop offset is added after the caps and the sum is clipped to what the hardware allows:
import up to the curve, the EVSE rating and the site share (not the charging limit: frequency
response is the grid operator's call, and it may use headroom a profile leaves), export up to
min(max_discharge_w, EVSE rating) and only in V2X mode above `min_soc`.

A negative charging limit (a discharge limit in OCPP 2.1 terms) allows no import, and its
magnitude caps the export.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Literal

from .catalogue import EvModel, ac_curve

__all__ = ["EvSession", "Supply"]

Supply = Literal["AC", "DC"]

#: Events one fold or projection may cross before it gives up (a curve has a few dozen at most).
#: Times closer than this (seconds) are one instant seen through floating-point rounding.
_SAME_INSTANT_S = 1e-6
_MAX_EVENTS = 10_000


class EvSession:
    """One EV plugged into one EVSE; see the module docstring for the rules."""

    __slots__ = (
        "_curve_soc",
        "_curve_w",
        "_demand_w",
        "_droop_w",
        "_efficiency",
        "_enabled",
        "_exported_wh",
        "_imported_wh",
        "_limit_w",
        "_next_s",
        "_next_soc",
        "_peak_w",
        "_power_w",
        "_projection",
        "_rate_per_s",
        "_setpoint_w",
        "_share_w",
        "_soc",
        "_t_s",
        "evse_max_w",
        "min_soc",
        "model",
        "supply",
        "target_soc",
    )

    def __init__(
        self,
        model: EvModel,
        *,
        supply: Supply,
        evse_max_w: float,
        evse_phases: int,
        soc: float,
        target_soc: float,
        min_soc: float,
        now_s: float,
    ) -> None:
        if supply not in ("AC", "DC"):
            raise ValueError(f"supply must be 'AC' or 'DC', got {supply!r}")
        if not (math.isfinite(evse_max_w) and evse_max_w >= 0):
            raise ValueError(f"evse_max_w must be a number >= 0, got {evse_max_w!r}")
        if evse_phases not in (1, 2, 3):
            raise ValueError(f"evse_phases must be 1, 2 or 3, got {evse_phases!r}")
        for name, value in (("soc", soc), ("target_soc", target_soc), ("min_soc", min_soc)):
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be a finite number of simulated seconds, got {now_s!r}")
        self.model = model
        self.supply: Supply = supply
        self.evse_max_w = float(evse_max_w)
        self.target_soc = float(target_soc)
        self.min_soc = float(min_soc)
        if supply == "AC":
            if model.max_ac_w <= 0:
                raise ValueError(
                    f"EV model {model.name!r} has no AC inlet (max_ac_w is 0); "
                    "plug it into a DC EVSE"
                )
            # An EV whose charger uses three phases gets a third of its power per missing
            # phase; a single-phase EV on a three-phase EVSE uses one phase at its own limit.
            scale = min(1.0, evse_phases / model.ac_phases)
            curve = tuple((soc_i, power_w * scale) for soc_i, power_w in ac_curve(model))
            self._efficiency = model.ac_efficiency
        else:
            curve = model.dc_curve
            self._efficiency = model.dc_efficiency
        self._curve_soc = tuple(point[0] for point in curve)
        #: The curve's power at each breakpoint within what the EVSE gives.
        self._curve_w = tuple(min(point[1], self.evse_max_w) for point in curve)
        self._enabled = False
        self._limit_w: float | None = None
        self._setpoint_w: float | None = None
        self._share_w: float | None = None
        self._droop_w = 0.0
        self._t_s = float(now_s)
        self._soc = float(soc)
        self._imported_wh = 0.0
        self._exported_wh = 0.0
        self._peak_w = 0.0
        self._power_w = 0.0
        self._rate_per_s = 0.0
        self._next_soc: float | None = None
        self._next_s = math.inf
        #: The last `_project`: the time asked and what it gave.  A transaction event reads the
        #: register, the SoC and the energy to count at one instant; a change of the state
        #: (`_advance`, `_recompute`) forgets it.
        self._projection: tuple[float, tuple[float, float, float]] | None = None
        #: `demand_w`, until the state changes.
        self._demand_w: float | None = None
        self._recompute()

    # -- inputs ---------------------------------------------------------------------------

    def set_enabled(self, enabled: bool, now_s: float) -> None:
        """Close (True) or open the power path: authorized and transaction running, or not."""
        value = bool(enabled)
        if value == self._enabled:
            self._check_time(now_s)
            return
        self._fold(now_s)
        self._enabled = value
        self._recompute()

    # The visit task sets the limit, the setpoint and the droop on every wake, nearly always
    # to the values in force: those three setters test for that first, before any check.

    def set_limit(self, limit_w: float | None, now_s: float) -> None:
        """The charging limit of the active profile in W; None means no limit."""
        if (limit_w is None and self._limit_w is None) or (
            type(limit_w) is float and limit_w == self._limit_w
        ):
            # The value in force, checked when it was set: only the time is left to check.
            if not now_s >= self._t_s - _SAME_INSTANT_S:
                self._check_time(now_s)  # raises
            return
        value = _optional_number("limit_w", limit_w)
        if value == self._limit_w:
            self._check_time(now_s)
            return
        self._fold(now_s)
        self._limit_w = value
        self._recompute()

    def set_setpoint(self, setpoint_w: float | None, now_s: float) -> None:
        """The V2X setpoint in W (positive charges, negative discharges); None ends V2X."""
        if (setpoint_w is None and self._setpoint_w is None) or (
            type(setpoint_w) is float and setpoint_w == self._setpoint_w
        ):
            # The value in force, checked when it was set: only the time is left to check.
            if not now_s >= self._t_s - _SAME_INSTANT_S:
                self._check_time(now_s)  # raises
            return
        value = _optional_number("setpoint_w", setpoint_w)
        if value == self._setpoint_w:
            self._check_time(now_s)
            return
        self._fold(now_s)
        self._setpoint_w = value
        self._recompute()

    def set_target_soc(self, target_soc: float, now_s: float) -> None:
        """The SoC the EV charges to without a setpoint (the driver changed it, K17); a V2X
        setpoint still charges up to the full battery and discharges down to `min_soc`."""
        if not (0.0 <= target_soc <= 1.0):
            raise ValueError(f"target_soc must be in [0, 1], got {target_soc!r}")
        if target_soc == self.target_soc:
            self._check_time(now_s)
            return
        self._fold(now_s)
        self.target_soc = float(target_soc)
        self._recompute()

    def set_share(self, share_w: float | None, now_s: float) -> None:
        """This EV's share of the site's grid connection in W; None means unconstrained."""
        value = _optional_number("share_w", share_w)
        if value == self._share_w:
            self._check_time(now_s)
            return
        self._fold(now_s)
        self._share_w = value
        self._recompute()

    def set_droop(self, offset_w: float, now_s: float) -> None:
        """Frequency response in W added after the caps (negative: less import, more export)."""
        if type(offset_w) is float and offset_w == self._droop_w:
            # The value in force, checked when it was set: only the time is left to check.
            if not now_s >= self._t_s - _SAME_INSTANT_S:
                self._check_time(now_s)  # raises
            return
        value = _optional_number("offset_w", offset_w)
        droop_w = 0.0 if value is None else value
        if droop_w == self._droop_w:
            self._check_time(now_s)
            return
        self._fold(now_s)
        self._droop_w = droop_w
        self._recompute()

    @property
    def demand_w(self) -> float:
        """The power the EV would take now without its site share: what a site's load
        balancing shares out (asked at each balancing cycle and each step of the EV's visit
        task, so it is kept until the state changes)."""
        demand_w = self._demand_w
        if demand_w is None:
            share_w, self._share_w = self._share_w, None
            try:
                demand_w = self._demand_w = self._power_for(self._soc)
            finally:
                self._share_w = share_w
        return demand_w

    def on_change(self, now_s: float) -> None:
        """Fold and recompute at `now_s`; call it when `next_change_s()` arrives.

        Calling it late is safe: the fold crosses every change up to `now_s` in order.
        """
        self._fold(now_s)
        self._recompute()

    # -- readings -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the power path is closed (`set_enabled`)."""
        return self._enabled

    @property
    def power_w(self) -> float:
        """Grid-side power now (since the last fold): positive imports, negative exports."""
        return self._power_w

    @property
    def limit_w(self) -> float | None:
        """The charging limit in force (`set_limit`), None when no profile limits the EV."""
        return self._limit_w

    @property
    def setpoint_w(self) -> float | None:
        """The V2X setpoint in force (`set_setpoint`), None when there is none."""
        return self._setpoint_w

    @property
    def peak_w(self) -> float:
        """The highest import power of the session so far."""
        return self._peak_w

    def next_change_s(self) -> float:
        """When the SoC reaches the next curve breakpoint, the target or the minimum SoC.

        `math.inf` when the power is 0 or nothing lies ahead in the direction of travel.
        """
        return self._next_s

    def soc_at(self, t_s: float) -> float:
        """State of charge (0..1) at simulated second `t_s` (no earlier than the last fold)."""
        return self._project(t_s)[0]

    def readings_at(self, t_s: float) -> tuple[float, float, float]:
        """(SoC, imported Wh, exported Wh) at `t_s`, in one projection: what a metrics scrape
        of a whole fleet reads per EV."""
        return self._project(t_s)

    def imported_wh_at(self, t_s: float) -> float:
        """Energy imported from the grid since plug-in, up to `t_s`."""
        return self._project(t_s)[1]

    def exported_wh_at(self, t_s: float) -> float:
        """Energy exported to the grid since plug-in, up to `t_s`."""
        return self._project(t_s)[2]

    # -- the physics ----------------------------------------------------------------------

    def _import_envelope_w(self, soc: float) -> float:
        """What the EV, the EVSE and the site connection allow in at `soc`."""
        index = bisect_right(self._curve_soc, soc) - 1
        envelope_w = self._curve_w[index if index > 0 else 0]
        share_w = self._share_w
        if share_w is not None:
            # min(envelope_w, max(share_w, 0.0)), written out: every balancing cycle asks.
            share_w = 0.0 if share_w < 0.0 else share_w
            if share_w < envelope_w:
                envelope_w = share_w
        return envelope_w

    def _power_for(self, soc: float) -> float:
        """The grid-side power at `soc` under the present inputs."""
        if not self._enabled:
            return 0.0
        setpoint_w = self._setpoint_w
        limit_w = self._limit_w
        if setpoint_w is None:
            import_w = self._import_envelope_w(soc) if soc < self.target_soc else 0.0
            export_w = 0.0
        else:
            import_w = self._import_envelope_w(soc) if soc < 1.0 else 0.0
            export_w = 0.0
            if self.model.bidirectional and soc > self.min_soc:
                export_w = min(self.model.max_discharge_w, self.evse_max_w)
        import_cap_w = import_w
        if limit_w is not None:
            # min(import_w, max(limit_w, 0.0)), written out: a profile's limit is read here for
            # every EV at every balancing cycle.
            capped_w = 0.0 if limit_w < 0.0 else limit_w
            if capped_w < import_cap_w:
                import_cap_w = capped_w
        if setpoint_w is None:
            base_w = import_cap_w
        elif setpoint_w >= 0:
            base_w = min(setpoint_w, import_cap_w)
        else:  # only a discharge reads the export cap
            export_cap_w = export_w if limit_w is None else min(export_w, abs(limit_w))
            base_w = -min(-setpoint_w, export_cap_w)
        power_w = min(max(base_w + self._droop_w, -export_w), import_w)
        return power_w or 0.0  # no -0.0

    def _segment(self, soc: float, t_s: float) -> tuple[float, float, float | None, float]:
        """(power, SoC per second, the SoC where the power may change, when) from `soc`."""
        power_w = self._power_for(soc)
        efficiency = self._efficiency
        battery_w = power_w * efficiency if power_w > 0 else power_w / efficiency
        rate_per_s = battery_w / (self.model.usable_battery_wh * 3600.0)
        next_soc: float | None = None
        if power_w > 0:
            stop = self.target_soc if self._setpoint_w is None else 1.0
            index = bisect_right(self._curve_soc, soc)
            breakpoint_soc = self._curve_soc[index] if index < len(self._curve_soc) else math.inf
            next_soc = min(breakpoint_soc, stop)
        elif power_w < 0:
            next_soc = self.min_soc
        if next_soc is None or rate_per_s == 0:
            return power_w, rate_per_s, None, math.inf
        return power_w, rate_per_s, next_soc, t_s + (next_soc - soc) / rate_per_s

    def _recompute(self) -> None:
        self._projection = None
        self._demand_w = None
        power_w, rate, next_soc, next_s = self._segment(self._soc, self._t_s)
        self._power_w, self._rate_per_s, self._next_soc, self._next_s = (
            power_w,
            rate,
            next_soc,
            next_s,
        )
        if power_w > self._peak_w:
            self._peak_w = power_w

    def _check_time(self, now_s: float) -> None:
        """What `_fold` checks of `now_s`, for an input set to the value it already has.

        Such a call changes nothing, so it does not fold: the power stays what it was, and a
        visit task that re-applies its unchanged limits at every meter value costs no physics.
        """
        if not now_s >= self._t_s - _SAME_INSTANT_S:
            raise ValueError(
                f"time went backwards: asked for {now_s!r}, the session is at {self._t_s!r}"
            )

    def _fold(self, now_s: float) -> None:
        """Move the state to `now_s`, crossing (and applying) every change on the way.

        A time a hair (under a microsecond) before the state's is the same instant read
        through floating point, as a caller that advanced to a breakpoint and then reads the
        clock may see; it is taken as the state's own time.
        """
        if self._t_s - _SAME_INSTANT_S <= now_s < self._t_s:
            now_s = self._t_s
        if not now_s >= self._t_s:
            raise ValueError(
                f"time went backwards: asked for {now_s!r}, the session is at {self._t_s!r}"
            )
        for _ in range(_MAX_EVENTS):
            if self._next_s <= now_s and self._next_soc is not None:
                self._advance(self._next_s, self._next_soc)
                self._recompute()
                continue
            self._advance(now_s, None)
            return
        raise RuntimeError(
            f"EvSession of {self.model.name!r} crossed {_MAX_EVENTS} events in one fold"
        )

    def _advance(self, t_s: float, level_soc: float | None) -> None:
        """Let the present power run until `t_s`; land exactly on `level_soc` if given."""
        self._projection = None
        self._demand_w = None
        dt_s = t_s - self._t_s
        energy_wh = self._power_w * dt_s / 3600.0
        if energy_wh > 0:
            self._imported_wh += energy_wh
        elif energy_wh < 0:
            self._exported_wh -= energy_wh
        if level_soc is not None:
            self._soc = level_soc
        else:
            self._soc = min(1.0, max(0.0, self._soc + self._rate_per_s * dt_s))
        self._t_s = t_s

    def _project(self, t_s: float) -> tuple[float, float, float]:
        """(SoC, imported Wh, exported Wh) at `t_s`, without changing the session."""
        kept = self._projection
        if kept is not None and kept[0] == t_s:
            return kept[1]
        projected = self._projected(t_s)
        self._projection = (t_s, projected)
        return projected

    def _projected(self, t_s: float) -> tuple[float, float, float]:
        if self._t_s - _SAME_INSTANT_S <= t_s < self._t_s:
            t_s = self._t_s
        if not t_s >= self._t_s:
            raise ValueError(
                f"cannot read the session at {t_s!r}, before its last change at {self._t_s!r}"
            )
        soc, imported_wh, exported_wh, now_s = (
            self._soc,
            self._imported_wh,
            self._exported_wh,
            self._t_s,
        )
        power_w, rate, next_soc, next_s = (
            self._power_w,
            self._rate_per_s,
            self._next_soc,
            self._next_s,
        )
        for _ in range(_MAX_EVENTS):
            end_s = min(t_s, next_s)
            energy_wh = power_w * (end_s - now_s) / 3600.0
            if energy_wh > 0:
                imported_wh += energy_wh
            else:
                exported_wh -= energy_wh
            if next_soc is not None and next_s <= t_s:
                soc, now_s = next_soc, next_s
                power_w, rate, next_soc, next_s = self._segment(soc, now_s)
                continue
            soc = min(1.0, max(0.0, soc + rate * (end_s - now_s)))
            return soc, imported_wh, exported_wh
        raise RuntimeError(f"EvSession of {self.model.name!r} crossed {_MAX_EVENTS} events")


_NUMBER = (int, float)


def _optional_number(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of watts or None, got {value!r}")
    return float(value)
