"""EV models: who arrives at a station, when, with what battery, and how it charges.

Pure arithmetic on simulated seconds and numpy, with no trio and no simpy, so every model is
tested with plain numbers.

- `catalogue`: published figures of EV models (`EvModel`, `load_catalogue`, `ac_curve`).
- `session`: `EvSession`, one EV on one EVSE, piecewise-analytic power, SoC and energy.
- `population`: `ArrivalProcess`, the EVs that come to a site of a kind (`SITE_PROFILES`).
- `id_tokens`: the IdToken values drivers carry, in the format of each OCPP type.
"""

from .catalogue import CatalogueError, EvModel, Source, ac_curve, load_catalogue
from .id_tokens import (
    CARRIED_TYPES,
    NOT_CARRIED,
    OCPP_21_ONLY_TYPES,
    drivers_id_tokens,
    id_token_value,
    pool_id_token,
)
from .population import SITE_PROFILES, ArrivalProcess, EvArrival, SiteKind, SiteProfile
from .session import EvSession, Supply

__all__ = [
    "CARRIED_TYPES",
    "NOT_CARRIED",
    "OCPP_21_ONLY_TYPES",
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
    "drivers_id_tokens",
    "id_token_value",
    "load_catalogue",
    "pool_id_token",
]
