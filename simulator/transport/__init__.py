"""The only package that touches the network: one WebSocket per station.

`open_station_link` connects a station and yields a running `RpcLink`; `ConnectError` explains a
failed connection.  Stations speak through fleetsim's own lean WebSocket client
(`websocket.StationWebSocket`: no task, channel or lock of its own per connection); the embedded
CSMS serves with trio-websocket, whose connections `WebSocketChannel` adapts to a link.
`open_memory_link` joins a station to an in-process CSMS with no socket.
"""

from .addresses import parse_source_addresses
from .channel import WebSocketChannel
from .connect import ConnectError, ConnectionSettings, open_station_link, station_url
from .memory import ServeChannel, open_memory_link

__all__ = [
    "ConnectError",
    "ConnectionSettings",
    "ServeChannel",
    "WebSocketChannel",
    "open_memory_link",
    "open_station_link",
    "parse_source_addresses",
    "station_url",
]
