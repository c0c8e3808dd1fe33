"""EV models: who arrives at a station, when, with what battery, and how it charges.

Pure arithmetic on simulated seconds and numpy, with no trio and no simpy, so every model is
tested with plain numbers.

- `catalogue`: published figures of EV models (`EvModel`, `load_catalogue`, `ac_curve`).
- `session`: `EvSession`, one EV on one EVSE, piecewise-analytic power, SoC and energy.
- `population`: `ArrivalProcess`, the EVs that come to a site of a kind (`SITE_PROFILES`).
"""

from .catalogue import CatalogueError, EvModel, Source, ac_curve, load_catalogue
from .population import SITE_PROFILES, ArrivalProcess, EvArrival, SiteKind, SiteProfile
from .session import EvSession, Supply

__all__ = [
    "SITE_PROFILES",
    "ArrivalProcess",
    "CatalogueError",
    "EvArrival",
    "EvModel",
    "EvSession",
    "SiteKind",
    "SiteProfile",
    "Source",
    "Supply",
    "ac_curve",
    "load_catalogue",
]
