"""A cheap OCPP-J benchmark target: a WebSocket responder that costs far less than any client.

The round-trip benchmark measures a client's CPU per round trip, and the CSMS at the other end
must not be the bottleneck: the embedded CSMS (`fleetsim csms`) parses and validates every
frame in a single trio process and saturates before the clients do.  This target answers every
CALL with a fixed, schema-valid CALLRESULT and does as little as possible in between:

- picows (a Cython WebSocket implementation) on uvloop: frame parsing, masking and the socket
  calls are compiled code, and each frame is one callback, with no task or coroutine per
  message;
- no JSON parsing on the common path: the message id and the action are the second and third
  quoted fields of `[2,"<id>","<Action>",{...}]`, found with two `bytes.find` calls, and the
  answer is the id's bytes pasted into a prebuilt payload.  Anything unusual (whitespace,
  escapes, not a CALL) goes to a full `json.loads`, so every valid frame is still answered
  correctly;
- `currentTime` (BootNotification, Heartbeat) is formatted once per wall second.

It costs about 7 µs of CPU per round trip with 100 connections and 10 µs with 1,000 on the
2-core development machine (bench/roundtrip.py prints it for every client window), an eighth
or less of what the cheapest Python client pays, so a client's figures are its own.  With
`--processes K` K processes bind the same port with SO_REUSEPORT and the kernel spreads the
connections over them, for clients that would otherwise saturate one core of it.

Answers (OCPP 2.1 and 2.0.1 share them): BootNotification Accepted with `currentTime` and the
`--heartbeat-interval`; Heartbeat `currentTime`; Authorize Accepted; TransactionEvent `{}`, or
Accepted `idTokenInfo` when the request carries an `idToken`; StatusNotification, MeterValues,
NotifyReport, NotifyEvent, SecurityEventNotification `{}`; fixed statuses for the few other
station-initiated actions whose response requires one (DataTransfer, NotifyEVChargingNeeds, ...);
and `{}` for anything else.  Results, errors and SEND frames from the station get no answer.

Each process counts its round trips and, on SIGTERM or SIGINT, prints a JSON line with them and
its CPU seconds since it started listening, then exits with status 0; a benchmark can also read
the processes' CPU from /proc while they run (`Target.cpu_s`).

    python bench/target.py --port 9000                 # prints: target on ws://127.0.0.1:9000/ocpp
    python bench/target.py --port 0 --processes 2      # a free port, two processes

From another bench script:

    with start_target(processes=1, heartbeat_interval_s=300) as url:
        ...  # stations connect to f"{url}/{station_id}"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY_PREFIX = "target on "
#: The subprotocols the target speaks, most preferred first.
SUBPROTOCOLS = ("ocpp2.1", "ocpp2.0.1")
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_NO_SUBPROTOCOL_REASON = "offer one of the subprotocols " + ", ".join(SUBPROTOCOLS)


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the answers: bytes in, bytes out, no I/O ------------------------------------------------

# Constant answers, by action.  Each is valid against the OCPP 2.1 and 2.0.1 response schemas
# (tests/test_bench_target.py checks); an action not listed here gets `{}`.
_STATIC_PAYLOADS: dict[bytes, bytes] = {
    b"StatusNotification": b"{}",
    b"Authorize": b'{"idTokenInfo":{"status":"Accepted"}}',
    b"MeterValues": b"{}",
    b"NotifyReport": b"{}",
    b"NotifyEvent": b"{}",
    b"SecurityEventNotification": b"{}",
    # Station-initiated actions whose response requires a status; the target declines or
    # accepts without doing anything, as a CSMS with no such feature would.
    b"DataTransfer": b'{"status":"UnknownVendorId"}',
    b"NotifyEVChargingNeeds": b'{"status":"Accepted"}',
    b"NotifyEVChargingSchedule": b'{"status":"Accepted"}',
    b"SignCertificate": b'{"status":"Accepted"}',
    b"OpenPeriodicEventStream": b'{"status":"Accepted"}',
    b"PullDynamicScheduleUpdate": b'{"status":"Rejected"}',
    b"GetCertificateStatus": b'{"status":"Failed"}',
    b"Get15118EVCertificate": b'{"status":"Failed","exiResponse":""}',
}
_EMPTY = b"{}"
_TX_WITH_ID_TOKEN = b'{"idTokenInfo":{"status":"Accepted"}}'
_ID_TOKEN_KEY = b'"idToken"'


class Answers:
    """The CALLRESULT frame for each CALL frame, built from bytes without parsing JSON.

    Kept apart from the WebSocket code so it can be tested and timed on plain bytes.
    """

    def __init__(self, heartbeat_interval_s: int) -> None:
        self._boot_prefix = b'{"currentTime":"'
        self._boot_suffix = b'","interval":%d,"status":"Accepted"}' % heartbeat_interval_s
        self._clock_second = -1
        self._boot_payload = b""
        self._heartbeat_payload = b""

    def _refresh_clock(self) -> None:
        """Format `currentTime` at most once per wall second: strftime costs more than a
        whole answer."""
        second = int(time.time())
        if second != self._clock_second:
            self._clock_second = second
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
            self._boot_payload = self._boot_prefix + now + self._boot_suffix
            self._heartbeat_payload = b'{"currentTime":"' + now + b'"}'

    def payload_for(self, action: bytes, frame: bytes) -> bytes:
        """The CALLRESULT payload for `action`; `frame` is the whole CALL, for TransactionEvent."""
        if action == b"Heartbeat":
            self._refresh_clock()
            return self._heartbeat_payload
        if action == b"BootNotification":
            self._refresh_clock()
            return self._boot_payload
        if action == b"TransactionEvent":
            return _TX_WITH_ID_TOKEN if _ID_TOKEN_KEY in frame else _EMPTY
        return _STATIC_PAYLOADS.get(action, _EMPTY)

    def answer(self, frame: bytes) -> bytes | None:
        """The CALLRESULT for a CALL frame, or None for a frame that gets no answer.

        The fast path takes `[2,"<id>","<Action>",` literally: the id and the action are the
        first two quoted strings, and the id goes back into the answer exactly as it came, still
        quoted.  A backslash in either (an escape) or any other shape goes to `_answer_parsed`.
        """
        if frame.startswith(b'[2,"'):
            id_end = frame.find(b'"', 4)
            if id_end > 4 and frame.startswith(b',"', id_end + 1):
                action_end = frame.find(b'"', id_end + 3)
                if (
                    action_end > 0
                    and frame.startswith(b",", action_end + 1)
                    and b"\\" not in frame[4:action_end]
                ):
                    payload = self.payload_for(frame[id_end + 3 : action_end], frame)
                    return b"[3," + frame[3 : id_end + 1] + b"," + payload + b"]"
        return self._answer_parsed(frame)

    def _answer_parsed(self, frame: bytes) -> bytes | None:
        """The slow path: parse the frame fully.  Only CALLs are answered; a CALL whose id is
        readable but whose shape is wrong gets a CALLERROR, as OCPP-J asks."""
        try:
            message = json.loads(frame)
        except ValueError:
            return None
        if not (isinstance(message, list) and len(message) >= 2 and message[0] == 2):
            return None
        message_id = message[1]
        if not isinstance(message_id, str):
            return None
        quoted_id = json.dumps(message_id).encode()
        if len(message) != 4 or not isinstance(message[2], str) or not isinstance(message[3], dict):
            return b'[4,%b,"FormatViolation","not an OCPP-J CALL",{}]' % quoted_id
        action = message[2].encode()
        if action == b"TransactionEvent":
            payload = _TX_WITH_ID_TOKEN if "idToken" in message[3] else _EMPTY
        else:
            payload = self.payload_for(action, b"")
        return b"[3," + quoted_id + b"," + payload + b"]"


def choose_subprotocol(offered_headers: list[str]) -> str | None:
    """The subprotocol to select from the `Sec-WebSocket-Protocol` header values a client sent
    (each a comma-separated list): the target's preference decides, not the client's order."""
    offered = {name.strip() for header in offered_headers for name in header.split(",")}
    for subprotocol in SUBPROTOCOLS:
        if subprotocol in offered:
            return subprotocol
    return None


def station_id_from_path(path: bytes) -> bytes | None:
    """The last segment of the request path, without the query; None when it is empty."""
    last = path.split(b"?", 1)[0].rsplit(b"/", 1)[-1]
    return last or None


# -- the server ------------------------------------------------------------------------------


@dataclass
class ServerCounters:
    """What one target process did; printed as JSON when it stops."""

    round_trips: int = 0
    connections: int = 0
    rejected_handshakes: int = 0
    #: Answered frames by how long the answer took, from the frame's arrival in the callback
    #: to the reply handed to the socket: bucket b holds times under 2**b microseconds.  This
    #: is the CSMS-side processing time that a client's round trips are compared with.
    processing_us_log2: dict[int, int] = field(default_factory=dict)

    def processing_p_us(self, fraction: float) -> int | None:
        """Upper bound (µs, a power of two) under which `fraction` of answers were made."""
        total = sum(self.processing_us_log2.values())
        seen = 0
        for bucket in sorted(self.processing_us_log2):
            seen += self.processing_us_log2[bucket]
            if seen >= fraction * total:
                return int(2**bucket)
        return None


async def serve(
    host: str,
    port: int,
    heartbeat_interval_s: int,
    *,
    reuse_port: bool,
    on_ready: Callable[[int], None],
) -> ServerCounters:
    """Serve until SIGTERM or SIGINT; call `on_ready(port)` once listening."""
    import asyncio

    from picows import (
        WSCloseCode,
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
        ws_create_server,
    )

    counters = ServerCounters()
    processing = counters.processing_us_log2
    perf_counter_ns = time.perf_counter_ns
    answers = Answers(heartbeat_interval_s)
    answer = answers.answer
    text = WSMsgType.TEXT
    continuation = WSMsgType.CONTINUATION
    close = WSMsgType.CLOSE

    class OcppResponder(WSListener):
        """One connection: answer each complete text message; nothing else to keep."""

        def __init__(self, subprotocol: str | None) -> None:
            super().__init__()
            self._subprotocol = subprotocol
            self._fragments: list[bytes] | None = None

        def on_ws_connected(self, transport: WSTransport) -> None:
            if self._subprotocol is None:
                # What OCPP-J prescribes when no offered subprotocol is acceptable: complete
                # the handshake without one and close at once.
                counters.rejected_handshakes += 1
                transport.send_close(WSCloseCode.PROTOCOL_ERROR, _NO_SUBPROTOCOL_REASON)
                transport.disconnect()
                return
            counters.connections += 1

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            arrived_ns = perf_counter_ns()
            msg_type = frame.msg_type
            if msg_type is text and frame.fin:
                reply = answer(frame.get_payload_as_bytes())
            elif msg_type is text or msg_type is continuation:
                # A fragmented message: rare (clients send a CALL in one frame), kept simple.
                if msg_type is text:
                    self._fragments = []
                if self._fragments is None:
                    return
                self._fragments.append(frame.get_payload_as_bytes())
                if not frame.fin:
                    return
                reply = answer(b"".join(self._fragments))
                self._fragments = None
            elif msg_type is close:
                transport.send_close(WSCloseCode.OK)
                transport.disconnect()
                return
            else:
                return  # binary, and pongs (picows answers pings itself)
            if reply is not None:
                transport.send(text, reply)
                counters.round_trips += 1
                bucket = ((perf_counter_ns() - arrived_ns) // 1000).bit_length()
                processing[bucket] = processing.get(bucket, 0) + 1

    def accept(request: WSUpgradeRequest) -> Any:
        if station_id_from_path(request.path) is None:
            counters.rejected_handshakes += 1
            return None  # picows answers 404
        subprotocol = choose_subprotocol(request.headers.getall("Sec-WebSocket-Protocol", []))
        headers = {} if subprotocol is None else {"Sec-WebSocket-Protocol": subprotocol}
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(extra_headers=headers),
            OcppResponder(subprotocol),
        )

    server = await ws_create_server(
        accept,
        host,
        port,
        reuse_port=reuse_port,
        backlog=4096,  # a fleet opens connections in bursts
        websocket_handshake_timeout=30,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    on_ready(int(server.sockets[0].getsockname()[1]))
    await stop.wait()
    server.close()
    return counters


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"ws://{shown}:{port}/ocpp"


def _serve_main(host: str, port: int, heartbeat_interval_s: int, *, reuse_port: bool) -> None:
    """One serving process: print the ready line, serve, print the JSON summary."""
    # Every station holds a socket here: allow as many as the hard limit does.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        run: Callable[[Any], ServerCounters] = uvloop.run
    except ImportError:  # still correct on the default loop, only dearer
        import asyncio

        run = asyncio.run
    started: dict[str, float] = {}

    def on_ready(bound_port: int) -> None:
        started["cpu_s"] = _process_cpu_s()
        started["wall_s"] = time.perf_counter()
        print(READY_PREFIX + _url(host, bound_port), flush=True)

    counters = run(
        serve(host, port, heartbeat_interval_s, reuse_port=reuse_port, on_ready=on_ready)
    )
    cpu_s = _process_cpu_s() - started.get("cpu_s", 0.0)
    summary = {
        "pid": os.getpid(),
        "cpu_s": cpu_s,
        "wall_s": time.perf_counter() - started.get("wall_s", time.perf_counter()),
        "round_trips": counters.round_trips,
        "cpu_us_per_round_trip": cpu_s / counters.round_trips * 1e6
        if counters.round_trips
        else None,
        "connections": counters.connections,
        "rejected_handshakes": counters.rejected_handshakes,
        "processing_p50_us_at_most": counters.processing_p_us(0.50),
        "processing_p99_us_at_most": counters.processing_p_us(0.99),
        "processing_max_us_at_most": counters.processing_p_us(1.0),
    }
    print(json.dumps(summary), flush=True)


# -- starting and stopping target processes --------------------------------------------------


@dataclass
class Target:
    """Running target processes and where to reach them."""

    url: str
    processes: list[subprocess.Popen[bytes]]
    #: Each process's JSON summary, filled in when the target stops.
    summaries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def cpu_s(self) -> float:
        """CPU seconds (user + system, all threads) the processes have used so far, read from
        /proc so a driver can take it around a client's measurement window (10 ms ticks)."""
        total_ticks = 0
        for pid in self.pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total_ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return total_ticks / _CLOCK_TICKS_PER_S


def read_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The next line `process` writes to stdout, waiting at most `timeout_s`.

    Reads the pipe's file descriptor directly, a byte at a time, so nothing stays in a Python
    buffer where a later `select` would not see it.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    line = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 or not selector.select(remaining_s):
                raise TimeoutError(f"process {process.pid} wrote no line within {timeout_s} s")
            byte = os.read(fd, 1)
            if not byte:
                raise RuntimeError(
                    f"process {process.pid} ended (status {process.wait()}) before writing a line"
                )
            if byte == b"\n":
                return line.decode()
            line += byte


def _reserve_port(host: str) -> socket.socket:
    """A socket bound, with SO_REUSEPORT, to a free port: the workers bind the same port, and
    the port stays reserved until they listen on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    probe.bind((host, 0))
    return probe


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """SIGTERM each process, wait for it (killing it after STOP_TIMEOUT_S), and return the JSON
    summaries the target processes print on the way out."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    summaries = []
    for process in processes:
        try:
            out, _ = process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    summaries.append(dict(json.loads(line)))
    return summaries


@contextlib.contextmanager
def run_target(
    processes: int = 1,
    heartbeat_interval_s: int = 300,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[Target]:
    """Start the target as `processes` subprocesses on one port; stop them on exit.

    With more than one process and port 0 a free port is reserved here first, so every process
    binds the same one (SO_REUSEPORT).  Yields once all of them listen; on exit the processes'
    JSON summaries are in `Target.summaries`.
    """
    if processes < 1:
        raise ValueError("processes must be at least 1")
    probe = _reserve_port(host) if processes > 1 and port == 0 else None
    if probe is not None:
        port = int(probe.getsockname()[1])
    command = [sys.executable, str(Path(__file__).resolve())]
    options = ["--host", host, "--heartbeat-interval", str(heartbeat_interval_s)]
    if processes > 1:
        options.append("--reuse-port")
    started: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(processes):
            started.append(
                subprocess.Popen(
                    [*command, *options, "--port", str(port)],
                    stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                )
            )
        urls = {
            read_line(process, STARTUP_TIMEOUT_S).removeprefix(READY_PREFIX) for process in started
        }
        if probe is not None:
            probe.close()
            probe = None
        if len(urls) != 1:
            raise RuntimeError(f"the target processes listen on different URLs: {sorted(urls)}")
        target = Target(url=urls.pop(), processes=started)
        try:
            yield target
        finally:
            target.summaries = stop_processes(started)
            started = []
    finally:
        if probe is not None:
            probe.close()
        if started:
            stop_processes(started)


@contextlib.contextmanager
def start_target(processes: int = 1, heartbeat_interval_s: int = 300) -> Iterator[str]:
    """Start the target on loopback and a free port; yield its URL (`ws://127.0.0.1:P/ocpp`)."""
    with run_target(processes, heartbeat_interval_s) as target:
        yield target.url


# -- command line ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--processes", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--heartbeat-interval", type=int, default=300, dest="heartbeat_interval_s")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.processes == 1:
        _serve_main(args.host, args.port, args.heartbeat_interval_s, reuse_port=args.reuse_port)
        return

    # The parent only starts the workers, prints their URL and passes the stop signal on.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    with run_target(
        args.processes, args.heartbeat_interval_s, host=args.host, port=args.port
    ) as target:
        print(READY_PREFIX + target.url, flush=True)
        while not stop.wait(1.0):
            if any(process.poll() is not None for process in target.processes):
                break  # a worker died: stop the others and report
    total_cpu_s = sum(summary["cpu_s"] for summary in target.summaries)
    total_round_trips = sum(summary["round_trips"] for summary in target.summaries)
    summary = {
        "pid": os.getpid(),
        "cpu_s": total_cpu_s,
        "round_trips": total_round_trips,
        "cpu_us_per_round_trip": total_cpu_s / total_round_trips * 1e6
        if total_round_trips
        else None,
        "connections": sum(summary["connections"] for summary in target.summaries),
        "processes": target.summaries,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
