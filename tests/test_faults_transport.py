"""The transport's part in faults on purpose: a dropped WebSocket ends without a closing
handshake, as a network failure would, so the CSMS sees an abnormal closure (1006)."""

from __future__ import annotations

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from fleetsim.simulator.link import Answer
from fleetsim.simulator.ocpp import RpcSession, schema_set
from fleetsim.simulator.ocpp.actions import CSMS_INITIATED
from fleetsim.simulator.transport import RpcLink
from fleetsim.simulator.transport.websocket import open_station_websocket

WAIT_S = 10


async def test_an_aborted_link_drops_the_socket_without_a_close_frame(
    nursery: trio.Nursery,
) -> None:
    close_codes: list[int] = []
    heard = trio.Event()

    async def csms(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        try:
            await connection.get_message()
        except ConnectionClosed as exc:
            close_codes.append(exc.reason.code)
        heard.set()

    server = await nursery.start(serve_websocket, csms, "127.0.0.1", 0, None)
    with trio.fail_after(WAIT_S):
        socket = await open_station_websocket(
            "127.0.0.1",
            server.port,
            "/ocpp/CP1",
            host_header=f"127.0.0.1:{server.port}",
            subprotocol="ocpp2.1",
            headers=[],
        )
        link = RpcLink(
            socket,
            RpcSession(schema_set("2.1"), CSMS_INITIATED),
            lambda action, payload: Answer({}),
            spawn=nursery.start_soon,
        )
        await link.abort()
        assert link.closed
        await heard.wait()
    assert close_codes == [1006]  # abnormal closure: no Close frame came
