"""The only package that touches the network: one WebSocket per station.

`open_station_link` connects a station and yields a running `RpcLink`; `ConnectError` explains a
failed connection.  Nothing outside this package imports trio-websocket on the client side.
"""

from .channel import WebSocketChannel
from .connect import ConnectError, ConnectionSettings, open_station_link, station_url

__all__ = [
    "ConnectError",
    "ConnectionSettings",
    "WebSocketChannel",
    "open_station_link",
    "station_url",
]
