"""`StationWebSocket`: the client end of one station's WebSocket (RFC 6455), lean enough for a
fleet of tens of thousands in one process.

Why not trio-websocket (which the embedded CSMS still serves with): for each connection it runs a
reader task in a nursery of its own, passes every message through a memory channel to the task
that wants it, frames through wsproto and takes a lock for every send.  For a load tester that
is one more task switch per received message, a scheduling point per sent one, and about 10 KB
per station; with ten thousand stations the transport cost more CPU than the stations' logic.

Here the task that wants the next message (the link's reader) reads it from the socket itself,
frames are built and parsed in place, and over plain TCP a send is one `write(2)` that the
kernel takes at once in the usual case, so it needs no trip through the scheduler; only a full
socket buffer makes the sender wait until it is writable.  A read waits until the socket is
readable before reading, instead of trying first and failing: after an answer the next frame is
never there yet, and the failed attempt would cost a system call and an exception per message.
Over TLS (`wss://`) the same code reads and writes through `trio.SSLStream`.

What the station end must do, and does: mask every frame with a fresh random key (drawn from a
pool that `os.urandom` refills), answer Ping with Pong, answer the CSMS's Close with a Close, send
a Close (1000) when the station closes and wait up to `CLOSE_TIMEOUT_S` for the answer, reject
masked, reserved-bit or malformed frames from the server with Close 1002, text that is not UTF-8
with 1007, and messages over `MAX_MESSAGE_BYTES` with 1009 (trio-websocket's limit).
Fragmented messages are reassembled.  No extension is offered, so frames are never compressed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import ssl
from typing import Final

import trio

from ..ocpp import LinkClosed
from .turns import FairTurn

__all__ = [
    "CLOSE_TIMEOUT_S",
    "MAX_MESSAGE_BYTES",
    "HandshakeFailed",
    "HandshakeRejected",
    "StationWebSocket",
    "WIRE_BYTES",
    "WireBytes",
    "open_station_websocket",
]

#: The largest message accepted from the CSMS, in bytes (trio-websocket's default).
MAX_MESSAGE_BYTES: Final = 1 << 20
#: Wall seconds a closing station waits for the CSMS to answer its Close frame.
CLOSE_TIMEOUT_S: Final = 2.0
#: Bytes asked of the kernel per read: a few frames of the usual size; larger ones take more reads.
_RECEIVE_BYTES: Final = 16384
#: The longest HTTP response head a handshake may have.
_MAX_HANDSHAKE_BYTES: Final = 65536
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_CONTINUATION, _TEXT, _BINARY = 0x0, 0x1, 0x2
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_NORMAL, _PROTOCOL_ERROR, _INVALID_DATA, _TOO_BIG = 1000, 1002, 1007, 1009
#: Close codes a peer must not put on the wire (RFC 6455 7.4.1: reserved or local-only).
_UNSENDABLE_CODES: Final = frozenset({1004, 1005, 1006, 1015})

_OPEN, _CLOSING, _CLOSED = 0, 1, 2


class HandshakeRejected(Exception):
    """The server answered the opening handshake with an HTTP status other than 101."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"the server answered the WebSocket handshake with HTTP {status_code}")
        self.status_code = status_code


class HandshakeFailed(Exception):
    """The opening handshake broke off or its answer was not a valid WebSocket upgrade."""


class _MaskKeys:
    """Masking keys, four random bytes each, cut from a pool `os.urandom` fills 1,024 at a time
    (one system call per 1,024 frames instead of one per frame)."""

    __slots__ = ("_at", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        at = self._at
        if at >= len(self._pool):
            self._pool = os.urandom(4096)
            at = 0
        self._at = at + 4
        return self._pool[at : at + 4]


_MASK_KEYS = _MaskKeys()


def _masked(payload: bytes, key: bytes) -> bytes:
    """`payload` XOR the repeated 4-byte `key`, as one big-integer operation (in C)."""
    size = len(payload)
    if size == 0:
        return b""
    keystream = (key * ((size >> 2) + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keystream, "little")).to_bytes(
        size, "little"
    )


def client_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final, masked frame as a client sends it (RFC 6455 5.2)."""
    if key is None:
        key = _MASK_KEYS.next()
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + key + _masked(payload, key)


def _close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()[:123]


class _ProtocolViolation(Exception):
    """The server broke RFC 6455; the connection is closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WireBytes:
    """Bytes every station WebSocket of this process wrote and read, frame headers included
    (the handshake is not).  One addition per frame or per read, on objects the frame path
    already holds; `fleetsim_websocket_bytes_total` reads these when Prometheus scrapes."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0


#: The process's totals; a process runs one fleet, so one pair of counters serves it.
WIRE_BYTES = WireBytes()


class StationWebSocket:
    """An open client WebSocket; a `TextChannel` for `RpcLink` (see the module docstring).

    One task at a time may read (the link's reader); any task may send, and concurrent sends
    take turns (`FairTurn`, first come first served) so that frames never interleave.
    """

    __slots__ = (
        "_buffer",
        "_close_heard",
        "_closed_reason",
        "_fd",
        "_fragments",
        "_fragments_size",
        "_fragments_text",
        "_reading",
        "_send_turn",
        "_state",
        "_stream",
        "subprotocol",
    )

    def __init__(
        self,
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
        subprotocol: str | None,
        received: bytes = b"",
    ) -> None:
        self._stream = stream
        #: Plain TCP: the socket's descriptor, read and written directly.  TLS: None.
        self._fd: int | None = (
            stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        )
        self.subprotocol = subprotocol
        #: Bytes received and not yet parsed into frames (usually empty).
        self._buffer = received
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._fragments_text = True
        self._state = _OPEN
        self._closed_reason = ""
        self._reading = False
        #: Held while a frame is being written; other senders queue, first come first served.
        self._send_turn = FairTurn()
        #: Set when the reader sees the CSMS's Close (or the end of the stream) after ours.
        self._close_heard: trio.Event | None = None

    @property
    def closed(self) -> bool:
        return self._state != _OPEN

    # -- sending ------------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send one text message; `LinkClosed` when the connection is closing or gone."""
        if self._state != _OPEN:
            raise LinkClosed(f"WebSocket closed: {self._closed_reason or 'closing'}")
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._send_frame(client_frame(_TEXT, text.encode()))

    async def _send_frame(self, frame: bytes) -> None:
        turn = self._send_turn
        if turn.held:
            await turn.wait()
        else:
            turn.held = True
        try:
            WIRE_BYTES.sent += len(frame)
            fd = self._fd
            if fd is None:
                try:
                    await self._stream.send_all(frame)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise self._lost(f"send failed: {exc}") from None
                return
            try:
                sent = os.write(fd, frame)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise self._lost(f"send failed: {exc}") from None
            while sent < len(frame):
                # The kernel's buffer is full (a slow CSMS): wait until it drains.
                try:
                    await trio.lowlevel.wait_writable(fd)
                    if self._fd != fd:
                        raise self._lost("the connection was closed while sending")
                    sent += os.write(fd, memoryview(frame)[sent:])
                except BlockingIOError:
                    pass
                except (OSError, trio.ClosedResourceError) as exc:
                    raise self._lost(f"send failed: {exc}") from None
        finally:
            turn.release()

    # -- receiving ----------------------------------------------------------------------------

    async def receive_text(self) -> str | bytes:
        """The next message (text as str, binary as bytes); `LinkClosed` once the connection
        is gone.  Ping, Pong and Close are handled on the way."""
        if self._reading:
            if self._state == _OPEN:
                raise trio.BusyResourceError("another task is already reading this WebSocket")
            # `aclose` is reading the answer to its Close: wait for the end.
            await self._wait_closed()
            raise LinkClosed(f"WebSocket closed: {self._closed_reason}")
        self._reading = True
        try:
            while True:
                if self._buffer:
                    message = await self._next_message()
                    if message is not None and self._state == _OPEN:
                        return message  # (after our Close, messages are dropped)
                if self._state == _CLOSED:
                    raise LinkClosed(f"WebSocket closed: {self._closed_reason}")
                data = await self._receive_bytes()
                if not data:
                    self._peer_gone("the CSMS closed the connection without a Close frame")
                    raise LinkClosed(f"WebSocket closed: {self._closed_reason}")
                WIRE_BYTES.received += len(data)
                self._buffer = self._buffer + data if self._buffer else data
        finally:
            self._reading = False

    async def _receive_bytes(self) -> bytes:
        fd = self._fd
        try:
            if fd is None:
                return bytes(await self._stream.receive_some(_RECEIVE_BYTES))
            while True:
                await trio.lowlevel.wait_readable(fd)
                if self._fd != fd:
                    return b""  # closed meanwhile: the number may already be another socket's
                try:
                    return os.read(fd, _RECEIVE_BYTES)
                except BlockingIOError:
                    continue
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _next_message(self) -> str | bytes | None:
        """Parse frames off the buffer until a whole message is there (None: need more bytes)."""
        buffer = self._buffer
        at = 0
        try:
            while True:
                available = len(buffer) - at
                if available < 2:
                    return None
                first = buffer[at]
                second = buffer[at + 1]
                size = second & 0x7F
                start = at + 2
                if size == 126:
                    if available < 4:
                        return None
                    size = int.from_bytes(buffer[at + 2 : at + 4], "big")
                    start = at + 4
                elif size == 127:
                    if available < 10:
                        return None
                    size = int.from_bytes(buffer[at + 2 : at + 10], "big")
                    start = at + 10
                if second & 0x80:
                    raise _ProtocolViolation(_PROTOCOL_ERROR, "a frame from the server is masked")
                if first & 0x70:
                    raise _ProtocolViolation(_PROTOCOL_ERROR, "reserved bits set (no extension)")
                opcode = first & 0x0F
                fin = first & 0x80
                if opcode >= _CLOSE and (size > 125 or not fin):
                    raise _ProtocolViolation(
                        _PROTOCOL_ERROR, "a control frame is too long or split"
                    )
                if size > MAX_MESSAGE_BYTES or self._fragments_size + size > MAX_MESSAGE_BYTES:
                    raise _ProtocolViolation(
                        _TOO_BIG, f"Exceeded maximum message size: {MAX_MESSAGE_BYTES} bytes"
                    )
                end = start + size
                if end > len(buffer):
                    return None
                payload = buffer[start:end]
                at = end
                if opcode in (_TEXT, _BINARY):
                    if self._fragments is not None:
                        raise _ProtocolViolation(
                            _PROTOCOL_ERROR, "a new message began inside a fragmented one"
                        )
                    if fin:
                        return _decode(payload) if opcode == _TEXT else payload
                    self._fragments = [payload]
                    self._fragments_size = size
                    self._fragments_text = opcode == _TEXT
                elif opcode == _CONTINUATION:
                    fragments = self._fragments
                    if fragments is None:
                        raise _ProtocolViolation(_PROTOCOL_ERROR, "a continuation with no message")
                    fragments.append(payload)
                    self._fragments_size += size
                    if fin:
                        whole = b"".join(fragments)
                        self._fragments = None
                        self._fragments_size = 0
                        return _decode(whole) if self._fragments_text else whole
                elif opcode == _PING:
                    if self._state == _OPEN:
                        await self._send_frame(client_frame(_PONG, payload))
                elif opcode == _PONG:
                    pass
                elif opcode == _CLOSE:
                    at = len(buffer)  # nothing may follow a Close
                    await self._close_received(payload)
                    return None
                else:
                    raise _ProtocolViolation(_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        except _ProtocolViolation as exc:
            at = len(buffer)
            await self._fail(exc.code, exc.reason)
            return None
        finally:
            self._buffer = buffer[at:] if at < len(buffer) else b""

    async def _close_received(self, payload: bytes) -> None:
        code = _NORMAL
        reason = ""
        if len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                reason = ""
        elif payload:
            code = _PROTOCOL_ERROR
        described = f"code {code}" + (f" ({reason})" if reason else "")
        # When the CSMS closes first, echo its code (RFC 6455 5.5.1); then the connection is
        # done either way.
        reply = _NORMAL if code in _UNSENDABLE_CODES or code < 1000 else code
        await self._finish(reply, "", f"the CSMS closed the connection, {described}")

    async def _fail(self, code: int, reason: str) -> None:
        """Close with `code` because the server broke the protocol."""
        await self._finish(code, reason, f"code {code} ({reason})")

    async def _finish(self, code: int, reason: str, described: str) -> None:
        """Send our Close unless we already did, then close the stream."""
        if self._state == _OPEN:
            self._state = _CLOSING
            self._closed_reason = described
            with contextlib.suppress(LinkClosed):
                await self._send_frame(client_frame(_CLOSE, _close_payload(code, reason)))
        await self._close_stream()

    def _peer_gone(self, reason: str) -> None:
        if self._state != _CLOSED:
            if self._state == _OPEN or not self._closed_reason:
                self._closed_reason = reason
            self._state = _CLOSED
        if self._close_heard is not None:
            self._close_heard.set()

    def _lost(self, reason: str) -> LinkClosed:
        self._peer_gone(reason)
        return LinkClosed(f"WebSocket closed: {reason}")

    # -- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the WebSocket: send Close (1000), wait up to `CLOSE_TIMEOUT_S` for the answer,
        then close the TCP connection (at once when the caller is being cancelled)."""
        try:
            if self._state == _OPEN:
                self._state = _CLOSING
                self._closed_reason = "the station closed the connection"
                with trio.move_on_after(CLOSE_TIMEOUT_S):
                    await self._send_frame(client_frame(_CLOSE, _close_payload(_NORMAL)))
                    await self._wait_close_answer()
        except LinkClosed:
            pass
        finally:
            self._state = _CLOSED
            await self._close_stream()

    async def abort(self) -> None:
        """Drop the connection as a network failure would: the TCP connection closes with no
        Close frame, so the CSMS sees an abnormal closure (faults on purpose)."""
        if self._state != _CLOSED:
            self._closed_reason = "the connection was dropped on purpose"
        await self._close_stream()

    async def _wait_closed(self) -> None:
        if self._state == _CLOSED:
            await trio.lowlevel.checkpoint()
            return
        if self._close_heard is None:
            self._close_heard = trio.Event()
        await self._close_heard.wait()

    async def _wait_close_answer(self) -> None:
        if self._reading:
            # The link's reader sees the answer and tells us.
            await self._wait_closed()
            return
        while self._state != _CLOSED:
            try:
                await self.receive_text()  # messages after our Close are discarded
            except LinkClosed:
                return

    async def _close_stream(self) -> None:
        self._state = _CLOSED
        if self._close_heard is not None:
            self._close_heard.set()
        stream = self._stream
        if self._fd is not None:
            self._fd = None
        # SocketStream.aclose closes the socket before its checkpoint, so a cancelled caller
        # still releases the descriptor; an SSLStream is closed without its close_notify.
        if isinstance(stream, trio.SSLStream):
            await trio.aclose_forcefully(stream)
        else:
            await stream.aclose()


def _decode(payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise _ProtocolViolation(_INVALID_DATA, "a text message is not valid UTF-8") from None


# -- opening --------------------------------------------------------------------------------------


def _accept_token(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())


def _handshake_request(
    host: str, resource: str, key: bytes, subprotocol: str, headers: list[tuple[bytes, bytes]]
) -> bytes:
    lines = [
        f"GET {resource} HTTP/1.1".encode(),
        b"Host: " + host.encode("idna" if not host.isascii() else "ascii"),
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Protocol: " + subprotocol.encode(),
    ]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _parse_response(head: bytes) -> tuple[int, dict[str, str]]:
    """The status code and the headers (lower-case names, repeated ones joined with ", ")."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HandshakeFailed(f"the server's answer is not HTTP: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise HandshakeFailed(f"a malformed header in the server's answer: {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(parts[1]), headers


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",")}


async def _handshake(
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
    host: str,
    resource: str,
    subprotocol: str,
    headers: list[tuple[bytes, bytes]],
) -> tuple[str | None, bytes]:
    """Upgrade `stream` to a WebSocket; the subprotocol the server chose and the bytes it sent
    after its answer."""
    key = base64.b64encode(os.urandom(16))
    try:
        await stream.send_all(_handshake_request(host, resource, key, subprotocol, headers))
        response = b""
        while (end := response.find(b"\r\n\r\n")) < 0:
            if len(response) > _MAX_HANDSHAKE_BYTES:
                raise HandshakeFailed("the server's handshake answer is too long")
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise HandshakeFailed("the server closed the connection during the handshake")
            response += chunk
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise HandshakeFailed(f"the connection broke during the handshake: {exc}") from exc
    status, answer = _parse_response(response[:end])
    if status != 101:
        raise HandshakeRejected(status)
    if "websocket" not in _tokens(answer.get("upgrade", "")):
        raise HandshakeFailed("the server's answer does not upgrade to websocket")
    if "upgrade" not in _tokens(answer.get("connection", "")):
        raise HandshakeFailed("the server's answer lacks Connection: Upgrade")
    if answer.get("sec-websocket-accept", "").encode() != _accept_token(key):
        raise HandshakeFailed("the server's Sec-WebSocket-Accept does not match our key")
    if answer.get("sec-websocket-extensions"):
        raise HandshakeFailed("the server chose an extension we did not offer")
    chosen = answer.get("sec-websocket-protocol")
    if chosen is not None and chosen != subprotocol:
        raise HandshakeFailed(f"the server chose subprotocol {chosen!r}, which we did not offer")
    return chosen, response[end + 4 :]


async def open_station_websocket(
    host: str,
    port: int,
    resource: str,
    *,
    host_header: str,
    subprotocol: str,
    headers: list[tuple[bytes, bytes]],
    ssl_context: ssl.SSLContext | None = None,
    source_address: str | None = None,
) -> StationWebSocket:
    """Connect over TCP (from `source_address` if given), wrap in TLS when `ssl_context` is
    given, and do the opening handshake; the caller bounds it in time.

    Raises OSError (no TCP connection), `HandshakeRejected` or `HandshakeFailed`.
    """
    tcp = await trio.open_tcp_stream(host, port, local_address=source_address)
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] = tcp
    try:
        if ssl_context is not None:
            stream = trio.SSLStream(tcp, ssl_context, server_hostname=host)
            try:
                await stream.do_handshake()
            except trio.BrokenResourceError as exc:
                raise HandshakeFailed(f"TLS handshake failed: {exc.__cause__ or exc}") from exc
        chosen, received = await _handshake(stream, host_header, resource, subprotocol, headers)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return StationWebSocket(stream, chosen, received)
