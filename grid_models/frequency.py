"""`FrequencyModel`: grid frequency as an exactly sampled Ornstein-Uhlenbeck process plus scripts.

The deviation from nominal is a mean-reverting Gaussian process: left alone it returns to zero
with time constant tau, and its stationary standard deviation is sigma.  Between two sample
times the model applies the exact transition of that process,

    x(t + dt) = x(t) * exp(-dt / tau) + sigma * sqrt(1 - exp(-2 dt / tau)) * N(0, 1),

so a sample costs one normal draw however long the gap, nothing runs between samples, and the
joint distribution of the values at the sampled instants is the same whether the caller samples
every second or once an hour.  The first sample is drawn from the stationary distribution,
because a grid has been running long before the simulation starts.

Scripted `FrequencyEvent`s (a dip to 49.8 Hz after a plant trips, say) override the random
deviation during their window.  Their ramps blend linearly from the random frequency to the
scripted value and back, so the frequency never jumps unless the script asks for it (ramp 0).
The random process keeps running underneath an event, and the grid resumes from wherever it has
wandered to in the meantime.

Every draw comes from the `numpy.random.Generator` the caller passes in (one per scenario, seeded
from the scenario's seed), so a run is reproducible: the same seed and the same sample times give
the same values.
"""

# Where the default sigma and tau come from
# ------------------------------------------
#
# Continental Europe, 50 Hz:
#
# * Commission Regulation (EU) 2017/1485 (the System Operation Guideline, SO GL), Annex III:
#   the standard frequency range of the Continental Europe synchronous area is +/-50 mHz, and
#   its frequency quality target allows at most 15 000 minutes a year outside that range (2.9 %
#   of the time).  For a Gaussian deviation this bounds sigma at about 22.8 mHz.  Article 131
#   has TSOs publish, every month, the mean and standard deviation of the frequency, among
#   other criteria.
# * Swissgrid's "Frequency statistic" page (the Laufenburg coordination centre) grades
#   frequency quality by the standard deviation of one-second frequency deviations over each
#   15-minute interval.
# * gridradar.net ("Mains frequency"): in normal operation the Continental European frequency
#   moves in a corridor of about +/-20 mHz around 50 Hz (49.98 to 50.02 Hz).
# * L. Rydin Gorjao et al., "Data-Driven Model of the Power-Grid Frequency Dynamics", IEEE
#   Access 8 (2020) 43082-43097, fit a stochastic model to Continental European recordings; the
#   primary-control damping they report for that grid, c1 = 0.0083 per second (the default of
#   the authors' PowerGridNoise implementation, PIK-ICoNe/PowerGridNoise), is a relaxation time
#   1 / c1 of about 120 s.
#
# Hence sigma = 20 mHz and tau = 120 s.  With them the deviation leaves +/-50 mHz 1.2 % of the
# time, about 6 500 minutes a year, inside the SO GL target.  The model leaves out the
# deterministic power steps at the 15-minute trading boundaries that Rydin Gorjao et al. add
# on top of the noise; a scenario that needs one scripts it as a FrequencyEvent.
#
# North America, 60 Hz:
#
# * NERC BAL-001-2, Attachment 1 (CPS1): epsilon1, the targeted root-mean-square of the
#   clock-minute averages of frequency error, is 18 mHz for the Eastern Interconnection (where
#   PJM operates), 22.8 mHz for the Western, 30 mHz for ERCOT and 21 mHz for Quebec.
# * No fitted correlation time for a North American interconnection turned up in the sources
#   searched, so tau reuses the Continental European 120 s; the Eastern Interconnection is of
#   comparable size and also runs primary control with secondary control (AGC) behind it.
#
# A one-minute average of an OU process has a smaller RMS than the process itself, so the 60 Hz
# sigma is the one whose one-minute averages have RMS epsilon1 of the Eastern Interconnection:
# sigma_for_epsilon1(0.018) = 19.5 mHz.  For ERCOT or the West, pass
# sigma_hz=sigma_for_epsilon1(NERC_EPSILON1_HZ["ERCOT"]).

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType

import numpy as np

__all__ = [
    "CE_SIGMA_HZ",
    "CE_TIME_CONSTANT_S",
    "NERC_EPSILON1_HZ",
    "FrequencyEvent",
    "FrequencyModel",
    "block_average_rms_ratio",
    "default_statistics",
    "sigma_for_epsilon1",
]

#: Stationary standard deviation of the Continental European frequency (see the comment above).
CE_SIGMA_HZ = 0.020
#: Relaxation time of a Continental European frequency deviation, 1 / c1 of Rydin Gorjao et al.
CE_TIME_CONSTANT_S = 120.0
#: NERC BAL-001-2 epsilon1 per interconnection: the targeted RMS of one-minute average frequency
#: error, in Hz.
NERC_EPSILON1_HZ: Mapping[str, float] = MappingProxyType(
    {"Eastern": 0.018, "Western": 0.0228, "ERCOT": 0.030, "Quebec": 0.021}
)

#: How far a scripted event may take the frequency from nominal (a fraction of nominal).  A grid
#: 10 % off nominal has long since shed load or tripped; a larger figure is a typo or a 50/60 Hz
#: mix-up.
_MAX_EVENT_OFFSET = 0.10


def block_average_rms_ratio(block_s: float, time_constant_s: float) -> float:
    """RMS of `block_s`-long averages of a stationary OU process, as a fraction of its sigma.

    Averaging over a block removes the fast part of the fluctuation: the variance of the mean of
    an OU process with correlation exp(-|u| / tau) over a block of length T is
    sigma^2 * 2 (tau / T)^2 (T / tau - 1 + exp(-T / tau)).  Needed to turn NERC's epsilon1,
    which is defined on one-minute averages, into the sigma of the instantaneous frequency.
    """
    if not (block_s > 0 and math.isfinite(block_s)):
        raise ValueError(f"block_s must be a positive number of seconds, got {block_s!r}")
    _check_time_constant(time_constant_s)
    ratio = block_s / time_constant_s
    # expm1 keeps the small-ratio case exact: T/tau - 1 + exp(-T/tau) = T/tau + expm1(-T/tau).
    variance_ratio = 2.0 * (ratio + math.expm1(-ratio)) / (ratio * ratio)
    return math.sqrt(variance_ratio)


def sigma_for_epsilon1(epsilon1_hz: float, time_constant_s: float = CE_TIME_CONSTANT_S) -> float:
    """The OU sigma whose one-minute averages have RMS `epsilon1_hz` (NERC BAL-001 CPS1)."""
    if not (epsilon1_hz >= 0 and math.isfinite(epsilon1_hz)):
        raise ValueError(f"epsilon1_hz must be a non-negative number, got {epsilon1_hz!r}")
    return epsilon1_hz / block_average_rms_ratio(60.0, time_constant_s)


def default_statistics(nominal_hz: float) -> tuple[float, float]:
    """(sigma_hz, time_constant_s) from published figures for a `nominal_hz` grid.

    50 Hz: Continental Europe.  60 Hz: the Eastern Interconnection of North America.  The module
    comment gives the sources.
    """
    if nominal_hz == 50.0:
        return CE_SIGMA_HZ, CE_TIME_CONSTANT_S
    if nominal_hz == 60.0:
        return sigma_for_epsilon1(NERC_EPSILON1_HZ["Eastern"]), CE_TIME_CONSTANT_S
    raise ValueError(f"nominal_hz must be 50 or 60, got {nominal_hz!r}")


@dataclass(frozen=True, slots=True)
class FrequencyEvent:
    """A scripted excursion: the frequency holds `frequency_hz` for `duration_s`.

    The event begins at `start_s`.  With `ramp_s` > 0 it first ramps linearly from the random
    frequency to `frequency_hz` over `ramp_s`, holds the value for `duration_s`, then ramps back
    over another `ramp_s`, so the whole event lasts `duration_s + 2 * ramp_s` and the scripted
    value is held for exactly `duration_s` (that is what "a 30 s dip" means to a scenario
    author).  The window is half-open: at `end_s` the random frequency is back.
    """

    start_s: float
    duration_s: float
    frequency_hz: float
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.start_s >= 0 and math.isfinite(self.start_s)):
            raise ValueError(
                f"frequency event start_s must be >= 0 (simulated seconds after the start), "
                f"got {self.start_s!r}"
            )
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError(
                f"frequency event at {self.start_s:g} s: duration_s must be > 0, "
                f"got {self.duration_s!r}"
            )
        if not (self.frequency_hz > 0 and math.isfinite(self.frequency_hz)):
            raise ValueError(
                f"frequency event at {self.start_s:g} s: frequency_hz must be a positive "
                f"number of Hz, got {self.frequency_hz!r}"
            )
        if not (self.ramp_s >= 0 and math.isfinite(self.ramp_s)):
            raise ValueError(
                f"frequency event at {self.start_s:g} s: ramp_s must be >= 0, got {self.ramp_s!r}"
            )

    @property
    def hold_start_s(self) -> float:
        """When the ramp in ends and the scripted value is reached."""
        return self.start_s + self.ramp_s

    @property
    def hold_end_s(self) -> float:
        """When the ramp out begins."""
        return self.start_s + self.ramp_s + self.duration_s

    @property
    def end_s(self) -> float:
        """When the random frequency is fully back."""
        return self.hold_end_s + self.ramp_s

    def weight_at(self, t_s: float) -> float:
        """How much of the frequency at `t_s` is the scripted value: 0 outside, 1 while held."""
        if t_s < self.start_s or t_s >= self.end_s:
            return 0.0
        if t_s < self.hold_start_s:
            return (t_s - self.start_s) / self.ramp_s
        if t_s <= self.hold_end_s:
            return 1.0
        return (self.end_s - t_s) / self.ramp_s

    def boundaries(self) -> list[float]:
        """The instants where the frequency's course changes: start, hold, ramp out, end."""
        if self.ramp_s == 0:
            return [self.start_s, self.end_s]
        return [self.start_s, self.hold_start_s, self.hold_end_s, self.end_s]


class FrequencyModel:
    """The frequency of one synchronous grid; see the module docstring for the process.

    `sigma_hz` and `time_constant_s` default to published figures for the nominal frequency's
    grids (`default_statistics`); `sigma_hz=0` keeps the frequency at nominal outside events and
    draws nothing.  `rng` is required whenever `sigma_hz` > 0.  Events must not overlap.

    `frequency_at` must be called with times that never decrease: the model keeps only the state
    at the last sample, which is what makes a sample cost O(1).
    """

    __slots__ = (
        "_deviation_hz",
        "_event_index",
        "_last_t_s",
        "_rng",
        "events",
        "nominal_hz",
        "sigma_hz",
        "time_constant_s",
    )

    def __init__(
        self,
        nominal_hz: float = 50.0,
        *,
        sigma_hz: float | None = None,
        time_constant_s: float | None = None,
        events: Iterable[FrequencyEvent] = (),
        rng: np.random.Generator | None = None,
    ) -> None:
        default_sigma_hz, default_time_constant_s = default_statistics(nominal_hz)
        self.nominal_hz = float(nominal_hz)
        self.sigma_hz = default_sigma_hz if sigma_hz is None else float(sigma_hz)
        self.time_constant_s = (
            default_time_constant_s if time_constant_s is None else float(time_constant_s)
        )
        if not (self.sigma_hz >= 0 and math.isfinite(self.sigma_hz)):
            raise ValueError(f"sigma_hz must be >= 0 Hz, got {sigma_hz!r}")
        _check_time_constant(self.time_constant_s)
        if self.sigma_hz > 0 and rng is None:
            raise ValueError(
                "a random frequency (sigma_hz > 0) needs rng=numpy.random.default_rng(seed), so "
                "the run is reproducible; pass sigma_hz=0 for a frequency fixed at nominal"
            )
        self._rng = rng
        self.events: tuple[FrequencyEvent, ...] = tuple(
            sorted(events, key=lambda event: event.start_s)
        )
        self._check_events()
        self._deviation_hz = 0.0
        self._last_t_s: float | None = None
        self._event_index = 0

    def _check_events(self) -> None:
        for event in self.events:
            if abs(event.frequency_hz - self.nominal_hz) > _MAX_EVENT_OFFSET * self.nominal_hz:
                raise ValueError(
                    f"frequency event at {event.start_s:g} s goes to {event.frequency_hz:g} Hz, "
                    f"{abs(event.frequency_hz - self.nominal_hz):g} Hz from the nominal "
                    f"{self.nominal_hz:g} Hz; a grid event moves the frequency by a few tenths "
                    "of a hertz, so check the event and the nominal frequency"
                )
        for earlier, later in pairwise(self.events):
            if later.start_s < earlier.end_s:
                raise ValueError(
                    f"frequency events overlap: the one at {earlier.start_s:g} s lasts until "
                    f"{earlier.end_s:g} s (ramps included) but the next starts at "
                    f"{later.start_s:g} s; move it or merge them into one event"
                )

    def event_boundaries(self) -> list[float]:
        """Every instant at which an event starts, reaches its value, ramps out or ends.

        A caller that samples at these times (besides its regular grid) sees every event edge,
        and because ramps are linear it can interpolate between them exactly when sigma is 0.
        """
        return sorted({time_s for event in self.events for time_s in event.boundaries()})

    def frequency_at(self, t_s: float) -> float:
        """The grid frequency in Hz at simulated time `t_s`, which must not precede the last one.

        Asking twice for the same time returns the same value and draws nothing.
        """
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be a finite number of seconds, got {t_s!r}")
        if self._last_t_s is not None and t_s < self._last_t_s:
            raise ValueError(
                f"frequency_at({t_s!r}) called after frequency_at({self._last_t_s!r}): the "
                "frequency model only moves forward in time, since it keeps only its last "
                "state; sample in time order, or build a new model from the same seed"
            )
        random_hz = self.nominal_hz + self._advance(t_s)
        event = self._event_at(t_s)
        if event is None:
            return random_hz
        weight = event.weight_at(t_s)
        if weight == 1.0:
            return event.frequency_hz
        return random_hz + weight * (event.frequency_hz - random_hz)

    def _advance(self, t_s: float) -> float:
        """Move the random deviation to `t_s` with the exact OU transition; returns it in Hz."""
        last_t_s = self._last_t_s
        self._last_t_s = t_s
        if self.sigma_hz == 0 or t_s == last_t_s:
            return self._deviation_hz
        assert self._rng is not None  # checked in __init__ whenever sigma_hz > 0
        draw = float(self._rng.standard_normal())
        if last_t_s is None:
            self._deviation_hz = self.sigma_hz * draw
        else:
            step_s = t_s - last_t_s
            decay = math.exp(-step_s / self.time_constant_s)
            # 1 - exp(-2 dt / tau), written with expm1 so short steps keep their precision.
            spread = math.sqrt(-math.expm1(-2.0 * step_s / self.time_constant_s))
            self._deviation_hz = self._deviation_hz * decay + self.sigma_hz * spread * draw
        return self._deviation_hz

    def _event_at(self, t_s: float) -> FrequencyEvent | None:
        """The event whose window holds `t_s`; events are sorted and time only moves forward,
        so a cursor skips past the finished ones and a lookup is O(1) amortised."""
        events = self.events
        while self._event_index < len(events) and events[self._event_index].end_s <= t_s:
            self._event_index += 1
        if self._event_index < len(events) and events[self._event_index].start_s <= t_s:
            return events[self._event_index]
        return None


def _check_time_constant(time_constant_s: float) -> None:
    if not (time_constant_s > 0 and math.isfinite(time_constant_s)):
        raise ValueError(f"time_constant_s must be > 0 seconds, got {time_constant_s!r}")
