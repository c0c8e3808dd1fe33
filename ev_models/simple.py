"""`SimpleSessionModel`: EV visits with Poisson arrivals and uniformly drawn needs.

Every draw for visit `n` of EVSE `e` of station `s` comes from a generator seeded with
`(seed, s, e, n)`.  A run is therefore reproducible whatever order trio schedules the stations
in, and no station holds a generator between visits (a numpy generator is a few hundred bytes,
times 60,000 EVSEs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["EvVisit", "SessionModelSettings", "SimpleSessionModel"]

#: An EV stops asking for energy at this state of charge even if the driver wanted more.
MAX_SOC = 0.95


@dataclass(frozen=True, slots=True)
class SessionModelSettings:
    arrivals_per_hour_per_evse: float = 0.5
    energy_wh: tuple[float, float] = (5_000.0, 30_000.0)
    dwell_s: tuple[float, float] = (1_800.0, 14_400.0)
    ev_max_power_w: tuple[float, float] = (7_400.0, 22_000.0)
    battery_wh: tuple[float, float] = (40_000.0, 80_000.0)
    soc_start: tuple[float, float] = (0.1, 0.6)
    id_token_first_share: float = 0.3
    id_token_pattern: str = "TOKEN{index:05d}"
    id_token_count: int = 1000
    id_token_type: str = "ISO14443"
    remote_start_plugin_delay_s: float | None = 30.0


@dataclass(frozen=True, slots=True)
class EvVisit:
    """One EV's stay at an EVSE."""

    dwell_s: float
    energy_wanted_wh: float
    max_power_w: float
    battery_wh: float
    soc_start: float
    id_token: str
    id_token_type: str
    id_token_first: bool

    def soc_after(self, delivered_wh: float) -> float:
        """State of charge (0..1) after `delivered_wh` went into the battery."""
        return min(1.0, self.soc_start + delivered_wh / self.battery_wh)


class SimpleSessionModel:
    def __init__(self, settings: SessionModelSettings, seed: int) -> None:
        self.settings = settings
        self.seed = seed

    def _rng(self, station_index: int, evse_id: int, visit_number: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, station_index, evse_id, visit_number))

    def next_visit(
        self, station_index: int, evse_id: int, visit_number: int, after_s: float
    ) -> tuple[float, EvVisit] | None:
        """When the next EV arrives after simulated second `after_s`, and what it wants.

        None when the scenario has no arrivals.
        """
        rate_per_s = self.settings.arrivals_per_hour_per_evse / 3600.0
        if rate_per_s <= 0:
            return None
        rng = self._rng(station_index, evse_id, visit_number)
        arrival_s = after_s + float(rng.exponential(1.0 / rate_per_s))
        return arrival_s, self._draw(rng, station_index)

    def visit_for_token(
        self, station_index: int, evse_id: int, visit_number: int, id_token: str, id_token_type: str
    ) -> EvVisit:
        """The EV of a remote start: the CSMS chose the token, the model the car."""
        visit = self._draw(self._rng(station_index, evse_id, visit_number), station_index)
        return EvVisit(
            visit.dwell_s,
            visit.energy_wanted_wh,
            visit.max_power_w,
            visit.battery_wh,
            visit.soc_start,
            id_token,
            id_token_type,
            True,
        )

    def _draw(self, rng: np.random.Generator, station_index: int) -> EvVisit:
        s = self.settings
        battery_wh = float(rng.uniform(*s.battery_wh))
        soc_start = float(rng.uniform(*s.soc_start))
        room_wh = max(0.0, (MAX_SOC - soc_start) * battery_wh)
        energy_wh = min(float(rng.uniform(*s.energy_wh)), room_wh)
        token_index = int(rng.integers(0, s.id_token_count)) + 1
        return EvVisit(
            dwell_s=float(rng.uniform(*s.dwell_s)),
            energy_wanted_wh=math.floor(energy_wh),
            max_power_w=float(rng.uniform(*s.ev_max_power_w)),
            battery_wh=battery_wh,
            soc_start=soc_start,
            id_token=s.id_token_pattern.format(index=token_index),
            id_token_type=s.id_token_type,
            id_token_first=bool(rng.random() < s.id_token_first_share),
        )
