"""EV models: who arrives at a station, when, with what battery and what they want.

`SimpleSessionModel` draws visits (arrival, dwell, energy wanted, EV power, battery, SoC, IdToken)
from uniform ranges and Poisson arrivals, reproducibly from the scenario's seed.
"""

from .simple import EvVisit, SessionModelSettings, SimpleSessionModel

__all__ = ["EvVisit", "SessionModelSettings", "SimpleSessionModel"]
