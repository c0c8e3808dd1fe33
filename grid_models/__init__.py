"""Grid models: frequency, DER events and site capacity that stations and EVs respond to.

Pure arithmetic on simulated seconds and numpy, with no trio and no simpy, so every model is
tested with plain numbers; the world (`simulator/world.py`) puts them on the simulated clock.

- `frequency`: `FrequencyModel`, the grid frequency as an exactly sampled Ornstein-Uhlenbeck
  process calibrated to published grid statistics, with scripted `FrequencyEvent`s.
- `droop`: `DroopCurve` (deadband, linear, saturating) and `FreqWattCurve` (OCPP 2.1
  `v2xFreqWattCurve`), the response of an EV to the frequency.
- `der`: `DerEvent` and `DerSchedule`, the grid excursions a station reports, and `grid_at`,
  the frequency and voltage they leave at a site.
- `site`: `allocate` (water-filling share of a connection limit), `allocate_by_priority`,
  `SiteCapacity`, `SiteMeter`.
"""

from .der import (
    DEFAULT_CONTROL,
    DER_CONTROLS,
    DER_KINDS,
    DerControl,
    DerEvent,
    DerKind,
    DerSchedule,
    GridReading,
    grid_at,
)
from .droop import (
    DEFAULT_DEADBAND_HZ,
    DEFAULT_FULL_RESPONSE_DEVIATION_HZ,
    DroopCurve,
    FreqWattCurve,
)
from .frequency import (
    CE_SIGMA_HZ,
    CE_TIME_CONSTANT_S,
    NERC_EPSILON1_HZ,
    FrequencyEvent,
    FrequencyModel,
    block_average_rms_ratio,
    default_statistics,
    sigma_for_epsilon1,
)
from .site import SiteCapacity, SiteMeter, SiteSample, allocate, allocate_by_priority

__all__ = [
    "CE_SIGMA_HZ",
    "CE_TIME_CONSTANT_S",
    "DEFAULT_CONTROL",
    "DEFAULT_DEADBAND_HZ",
    "DEFAULT_FULL_RESPONSE_DEVIATION_HZ",
    "DER_CONTROLS",
    "DER_KINDS",
    "NERC_EPSILON1_HZ",
    "DerControl",
    "DerEvent",
    "DerKind",
    "DerSchedule",
    "GridReading",
    "grid_at",
    "DroopCurve",
    "FreqWattCurve",
    "FrequencyEvent",
    "FrequencyModel",
    "SiteCapacity",
    "SiteMeter",
    "SiteSample",
    "allocate",
    "allocate_by_priority",
    "block_average_rms_ratio",
    "default_statistics",
    "sigma_for_epsilon1",
]
