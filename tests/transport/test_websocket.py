"""fleetsim's own station WebSocket client against trio-websocket servers (as CSMSs use) and
against raw TCP servers that send exactly the bytes a test needs, well-formed or not.

These run over loopback on trio's real clock, every wait bounded by `trio.fail_after`.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trio
import trustme
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from fleetsim.simulator.link import Answer, ConnectError
from fleetsim.simulator.ocpp import LinkClosed
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import ConnectionSettings, open_station_link
from fleetsim.simulator.transport.websocket import (
    MAX_MESSAGE_BYTES,
    HandshakeFailed,
    HandshakeRejected,
    StationWebSocket,
    client_frame,
    open_station_websocket,
)

WAIT_S = 10.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _unmask(frame: bytes) -> tuple[int, bytes]:
    """(first byte, payload) of one masked client frame."""
    size = frame[1] & 0x7F
    at = 2
    if size == 126:
        size, at = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, at = int.from_bytes(frame[2:10], "big"), 10
    key = frame[at : at + 4]
    payload = frame[at + 4 :]
    assert len(payload) == size
    return frame[0], bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_client_frames_are_final_masked_and_carry_their_length(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    frame = client_frame(0x1, payload, b"\x01\x02\x03\x04")
    assert frame[1] & 0x80, "a client frame must be masked"
    first, unmasked = _unmask(frame)
    assert first == 0x81
    assert unmasked == payload


def test_every_frame_gets_a_fresh_masking_key() -> None:
    keys = {client_frame(0x1, b"x")[2:6] for _ in range(2000)}
    assert len(keys) > 1990  # 32 random bits: a repeat in 2,000 draws is rare


# -- against trio-websocket, the library the embedded CSMS serves with --------------------------


async def _serve(
    nursery: trio.Nursery, handler: Callable[[WebSocketRequest], Awaitable[None]]
) -> int:
    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    return int(server.port)


async def _open(port: int, subprotocol: str = "ocpp2.1") -> StationWebSocket:
    return await open_station_websocket(
        "127.0.0.1",
        port,
        "/ocpp/CP1",
        host_header=f"127.0.0.1:{port}",
        subprotocol=subprotocol,
        headers=[],
    )


async def test_messages_of_every_size_go_both_ways(nursery: trio.Nursery) -> None:
    async def echo(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        for _ in range(4):
            await connection.send_message(await connection.get_message())

    port = await _serve(nursery, echo)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        assert socket.subprotocol == "ocpp2.1"
        for text in ('[2,"1","Heartbeat",{}]', "é" * 200, "x" * 70_000, "y" * 500_000):
            await socket.send_text(text)
            assert await socket.receive_text() == text
        await socket.aclose()


async def test_a_ping_is_answered_while_reading(nursery: trio.Nursery) -> None:
    pinged = trio.Event()

    async def ping_then_send(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        await connection.ping(b"are you there")  # returns once the pong arrives
        pinged.set()
        await connection.send_message("after the ping")
        await connection.get_message()

    port = await _serve(nursery, ping_then_send)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        assert await socket.receive_text() == "after the ping"
        assert pinged.is_set()
        await socket.aclose()


async def test_the_csms_closing_ends_reading_and_is_answered(nursery: trio.Nursery) -> None:
    closed: list[int | None] = []

    async def close_with_4000(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        await connection.send_message("last words")
        await connection.aclose(code=4000, reason="maintenance")  # waits for our answer
        assert connection.closed is not None
        closed.append(connection.closed.code)

    port = await _serve(nursery, close_with_4000)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        assert await socket.receive_text() == "last words"
        with pytest.raises(LinkClosed, match="code 4000 \\(maintenance\\)"):
            await socket.receive_text()
        with pytest.raises(LinkClosed):
            await socket.send_text("too late")
        await socket.aclose()
        while not closed:
            await trio.sleep(0.01)
    assert closed == [4000]


async def test_closing_sends_close_1000_and_ends_the_reader(nursery: trio.Nursery) -> None:
    seen: list[int] = []

    async def record_close(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        try:
            await connection.get_message()
        except ConnectionClosed as exc:
            assert exc.reason is not None
            seen.append(exc.reason.code)

    port = await _serve(nursery, record_close)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        reader_ended = trio.Event()

        async def read() -> None:
            with pytest.raises(LinkClosed):
                await socket.receive_text()
            reader_ended.set()

        nursery.start_soon(read)
        await trio.sleep(0.05)  # the reader is waiting on the socket
        await socket.aclose()
        await reader_ended.wait()
        while not seen:
            await trio.sleep(0.01)
    assert seen == [1000]


async def test_a_rejected_handshake_reports_the_status(nursery: trio.Nursery) -> None:
    async def reject(request: WebSocketRequest) -> None:
        await request.reject(403)

    port = await _serve(nursery, reject)
    with trio.fail_after(WAIT_S), pytest.raises(HandshakeRejected) as rejected:
        await _open(port)
    assert rejected.value.status_code == 403


async def test_wss_connects_with_the_scenario_trust(nursery: trio.Nursery) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def echo(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        await connection.send_message(await connection.get_message())
        await connection.get_message()

    server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, server_context)
    settings = ConnectionSettings(
        csms_url=f"wss://127.0.0.1:{server.port}/ocpp",
        ssl_context=client_context,
        connect_timeout_s=5,
    )

    def refuse(action: str, payload: object) -> Answer:
        raise AssertionError("no CALL expected")

    with trio.fail_after(WAIT_S):
        async with open_station_link(
            "CP1", settings, refuse, spawn=nursery.start_soon, observer=RunStats()
        ) as link:
            channel = link._channel
            assert isinstance(channel, StationWebSocket)
            # The link's reader holds the socket; write and read past it for the echo.
            await channel.send_text('[3,"7",{}]')
            await trio.sleep(0.05)
        assert link.closed


# -- against raw servers: exactly the bytes a test wants ----------------------------------------


def _server_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, (0x80 if masked else 0) | size))
    elif size < 65536:
        header = bytes((first, (0x80 if masked else 0) | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, (0x80 if masked else 0) | 127)) + size.to_bytes(8, "big")
    if masked:
        return header + b"\x00\x00\x00\x00" + payload
    return header + payload


async def _read_request(stream: trio.SocketStream) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        assert chunk, "the client closed during the handshake"
        request += chunk
    return request


def _accept_for(request: bytes) -> bytes:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return base64.b64encode(hashlib.sha1(value.strip() + _GUID).digest())
    raise AssertionError("no Sec-WebSocket-Key in the request")


RawServer = Callable[[trio.SocketStream, bytes], Awaitable[None]]


async def _raw_server(
    nursery: trio.Nursery, after_handshake: RawServer, answer: bytes = b""
) -> int:
    """A TCP server that accepts one upgrade (or sends `answer` instead) and then runs
    `after_handshake` with the stream and what the client sent after its request."""

    async def handle(stream: trio.SocketStream) -> None:
        request = await _read_request(stream)
        if answer:
            await stream.send_all(answer)
        else:
            await stream.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Protocol: ocpp2.1\r\n"
                b"Sec-WebSocket-Accept: " + _accept_for(request) + b"\r\n\r\n"
            )
        await after_handshake(stream, request.partition(b"\r\n\r\n")[2])

    listeners = await nursery.start(trio.serve_tcp, handle, 0)
    return int(listeners[0].socket.getsockname()[1])


async def _close_frame_from(stream: trio.SocketStream) -> int:
    """The code of the next client frame, which must be a Close."""
    data = b""
    while len(data) < 8:
        chunk = await stream.receive_some(4096)
        assert chunk
        data += chunk
    first, payload = _unmask(data[: 6 + (data[1] & 0x7F)])
    assert first == 0x88
    return int.from_bytes(payload[:2], "big")


async def test_fragmented_messages_are_reassembled_around_a_ping(nursery: trio.Nursery) -> None:
    pong: list[bytes] = []

    async def send_in_pieces(stream: trio.SocketStream, _: bytes) -> None:
        await stream.send_all(
            _server_frame(0x1, b"[3,", fin=False)
            + _server_frame(0x9, b"p")
            + _server_frame(0x0, b'"1",', fin=False)
            + _server_frame(0x0, b"{}]")
            + _server_frame(0x2, b"\x00binary")
        )
        data = await stream.receive_some(4096)
        pong.append(data)
        await stream.receive_some(4096)

    port = await _raw_server(nursery, send_in_pieces)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        assert await socket.receive_text() == '[3,"1",{}]'
        assert await socket.receive_text() == b"\x00binary"
        while not pong:
            await trio.sleep(0.01)
        await socket.aclose()
    assert _unmask(pong[0]) == (0x8A, b"p")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (_server_frame(0x1, b"hi", masked=True), 1002),
        (bytes((0xC1, 2)) + b"hi", 1002),  # RSV1 without an extension
        (_server_frame(0x0, b"orphan"), 1002),
        (_server_frame(0x3, b""), 1002),
        (_server_frame(0x9, b"p" * 126), 1002),
        (_server_frame(0x1, b"\xff\xfe"), 1007),
        (bytes((0x81, 127)) + (MAX_MESSAGE_BYTES + 1).to_bytes(8, "big"), 1009),
    ],
)
async def test_a_server_breaking_the_protocol_is_closed_with_its_code(
    frame: bytes, code: int, nursery: trio.Nursery
) -> None:
    codes: list[int] = []

    async def misbehave(stream: trio.SocketStream, _: bytes) -> None:
        await stream.send_all(frame)
        codes.append(await _close_frame_from(stream))

    port = await _raw_server(nursery, misbehave)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        with pytest.raises(LinkClosed):
            await socket.receive_text()
        while not codes:
            await trio.sleep(0.01)
    assert codes == [code]


async def test_frames_sent_right_after_the_handshake_are_not_lost(nursery: trio.Nursery) -> None:
    async def answer_and_frame_at_once(stream: trio.SocketStream, _: bytes) -> None:
        await stream.receive_some(4096)

    async def handle(stream: trio.SocketStream) -> None:
        request = await _read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: "
            + _accept_for(request)
            + b"\r\n\r\n"
            + _server_frame(0x1, b"early")
        )
        await answer_and_frame_at_once(stream, b"")

    listeners = await nursery.start(trio.serve_tcp, handle, 0)
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(WAIT_S):
        socket = await _open(port)
        assert socket.subprotocol is None  # this server chose none
        assert await socket.receive_text() == "early"
        await socket.aclose()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n",
            "does not match our key",
        ),
        (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "websocket"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
    ],
)
async def test_a_broken_handshake_answer_fails_with_its_reason(
    answer: bytes, problem: str, nursery: trio.Nursery
) -> None:
    async def nothing(stream: trio.SocketStream, _: bytes) -> None:
        await stream.receive_some(4096)

    port = await _raw_server(nursery, nothing, answer)
    with trio.fail_after(WAIT_S), pytest.raises(HandshakeFailed, match=problem):
        await _open(port)


async def test_a_server_that_never_answers_the_handshake_times_out(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep(WAIT_S)

    listeners = await nursery.start(trio.serve_tcp, silent, 0)
    port = listeners[0].socket.getsockname()[1]
    settings = ConnectionSettings(csms_url=f"ws://127.0.0.1:{port}/ocpp", connect_timeout_s=0.2)

    def refuse(action: str, payload: object) -> Answer:
        raise AssertionError("no CALL expected")

    with trio.fail_after(WAIT_S), pytest.raises(ConnectError) as error:
        async with open_station_link(
            "CP1", settings, refuse, spawn=nursery.start_soon, observer=RunStats()
        ):
            pass
    assert error.value.outcome == "timeout"
    assert "no WebSocket handshake" in str(error.value)


async def test_concurrent_senders_never_interleave_frames(nursery: trio.Nursery) -> None:
    received: list[str] = []

    async def collect(request: WebSocketRequest) -> None:
        connection = await request.accept(subprotocol="ocpp2.1")
        for _ in range(40):
            received.append(str(await connection.get_message()))

    port = await _serve(nursery, collect)
    with trio.fail_after(WAIT_S):
        socket = await _open(port)

        async def send(tag: str) -> None:
            for index in range(10):
                await socket.send_text(tag * 100_000 + str(index))

        async with trio.open_nursery() as senders:
            for tag in "abcd":
                senders.start_soon(send, tag)
        while len(received) < 40:
            await trio.sleep(0.01)
        await socket.aclose()
    assert sorted(received) == sorted(tag * 100_000 + str(i) for tag in "abcd" for i in range(10))
