"""`WebSocketChannel`: a trio-websocket connection seen as a `TextChannel`.

The embedded CSMS serves its end of each connection through this; stations use the leaner
`websocket.StationWebSocket` instead.
"""

from __future__ import annotations

from trio_websocket import ConnectionClosed, WebSocketConnection

from ..ocpp import LinkClosed

__all__ = ["WebSocketChannel"]


class WebSocketChannel:
    """Text in and out of one WebSocket; a closed connection becomes `LinkClosed`."""

    __slots__ = ("connection",)

    def __init__(self, connection: WebSocketConnection) -> None:
        self.connection = connection

    async def send_text(self, text: str) -> None:
        try:
            await self.connection.send_message(text)
        except ConnectionClosed as exc:
            raise LinkClosed(f"WebSocket closed: {exc.reason}") from None

    async def receive_text(self) -> str | bytes:
        try:
            return await self.connection.get_message()
        except ConnectionClosed as exc:
            raise LinkClosed(f"WebSocket closed: {exc.reason}") from None

    async def aclose(self) -> None:
        await self.connection.aclose()
