"""The only package that touches the network: one WebSocket per station, and the links over it.

`RpcLink` implements `simulator.link.Link` over any text channel, and `CallDeadlines` times out
the CALLs of many links from one task.  `open_station_link` connects a station and yields a
running `RpcLink`; `ConnectError` explains a failed connection.  Stations speak through
fleetsim's own lean WebSocket client (`websocket.StationWebSocket`: no task, channel or lock of
its own per connection); the embedded CSMS serves with trio-websocket, whose connections
`WebSocketChannel` adapts to a link.  `tls.py` makes the SSL contexts of security profiles 2
and 3 and explains TLS failures.  `open_memory_link` joins a station to an in-process CSMS
with no socket, over the two ends of `memory_channel_pair`.
"""

from .addresses import (
    SourceAddressError,
    check_source_addresses,
    parse_source_addresses,
    source_address_problem,
)
from .channel import WebSocketChannel
from .connect import (
    ConnectError,
    ConnectionSettings,
    CredentialsRefused,
    open_station_link,
    station_url,
)
from .memory import ServeChannel, memory_channel_pair, open_memory_link
from .rpc_link import CallDeadlines, RpcLink
from .tls import TlsSettings

__all__ = [
    "CallDeadlines",
    "ConnectError",
    "ConnectionSettings",
    "CredentialsRefused",
    "RpcLink",
    "ServeChannel",
    "SourceAddressError",
    "TlsSettings",
    "WebSocketChannel",
    "check_source_addresses",
    "memory_channel_pair",
    "open_memory_link",
    "open_station_link",
    "parse_source_addresses",
    "source_address_problem",
    "station_url",
]
