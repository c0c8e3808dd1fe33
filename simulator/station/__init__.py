"""One virtual charging station: device model, EVSEs and connectors, and the functional blocks.

`Station` runs over any `Link` (a WebSocket or in-memory channels); `StationConfig` is what the
stations of a fleet share.  The OCPP behaviour lives in the blocks of `blocks/`, which see the
station only through `core.StationCore`; `registry` merges them.
"""

from .config import EvseConfig, FirmwareConfig, StationConfig
from .station import Connect, Station

__all__ = ["Connect", "EvseConfig", "FirmwareConfig", "Station", "StationConfig"]
