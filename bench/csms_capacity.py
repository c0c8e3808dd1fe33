"""Capacity of the embedded CSMS itself: `fleetsim csms --processes K` under back-to-back CALLs.

Why: the embedded CSMS is the target of fleetsim's own load runs and of anyone who points
stations at `fleetsim csms`.  How many stations it can serve decides how large a run can be
before the target, not the fleet, is what is measured.  This measures it for K = 1 and 2
processes sharing one port with SO_REUSEPORT (simulator/csms/processes.py).

Each run starts `python -m fleetsim.cli csms --port 0 --processes K`, then C client processes (this
script with --client), each with N bare trio-websocket connections (subprotocol ocpp2.1) that
boot once and then, on the driver's word, send one CALL after another and wait for each answer:

  heartbeat          `[2,"1","Heartbeat",{}]`, the cheapest CALL there is;
  transaction-event  a TransactionEvent Updated with two sampled values (seqNo counting up
                     within one transaction per connection), the most frequent CALL of the
                     reference workload.

Measured over a fixed window after a warm-up:

- round trips per second (the clients count them; a CALLERROR counts as an error, not a round
  trip, and any error fails the run);
- the CSMS's CPU per round trip: utime + stime from /proc/<pid>/stat of every CSMS process
  (the supervisor and its workers), before and after the window, divided by the round trips;
  this does not depend on how busy the machine is otherwise, while round trips per second do;
- the CSMS's resident memory per connection: VmRSS of its processes with every connection
  booted and idle, minus VmRSS before the clients connected;
- the machine's busy share over the window (/proc/stat): on a machine where the clients and
  the CSMS share the cores, a busy share near 100 % says the cores, not the CSMS, set the
  round trips per second.

Each case runs --runs times and the medians are printed and written to
bench/results/csms_capacity.json, with what the CPU cost means in stations of the reference
workload (about 0.2 CALLs per second per station, scenarios/reference-load.yaml) when each CSMS
process may use 70 % of one core.

    python bench/csms_capacity.py                      # K = 1 and 2, 2 clients x 500, 3 runs
    python bench/csms_capacity.py --call heartbeat --call transaction-event
    python bench/csms_capacity.py --processes 2 --clients 3 --connections 8000 --runs 1 \\
        --json bench/results/csms_connections.json   # more sockets than one process may open
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import procstat

ROOT = Path(__file__).resolve().parent.parent
#: CALLs per second per station of the reference workload (scenarios/reference-load.yaml).
REFERENCE_CALLS_PER_STATION_S = 0.2
#: The share of each CSMS process's core the capacity figure allows it.
CPU_BUDGET_SHARE = 0.7
CALLS = ("heartbeat", "transaction-event")
BOOT_FRAME = (
    '[2,"boot","BootNotification",{"reason":"PowerUp",'
    '"chargingStation":{"model":"bench","vendorName":"bench"}}]'
)
_FIRST_LINE = re.compile(r"embedded CSMS on ws://([\d.]+):(\d+)/ocpp")
_PIDS = re.compile(r"process \d+ pid (\d+)")


def _transaction_event(transaction_id: str, seq_no: int, event_type: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": "2026-01-15T12:00:10Z",
        "triggerReason": "CablePluggedIn" if event_type == "Started" else "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
    }
    if event_type == "Started":
        payload["evse"] = {"id": 1, "connectorId": 1}
    else:
        payload["meterValue"] = [
            {
                "timestamp": "2026-01-15T12:00:10Z",
                "sampledValue": [
                    {
                        "value": 1234.5 + seq_no,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    },
                    {
                        "value": 7400.0,
                        "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "W"},
                    },
                ],
            }
        ]
    return payload


def _frames(call: str, station_id: str) -> tuple[list[str], Callable[[int], str]]:
    """The CALLs a connection sends once after booting, and the one it repeats (by count)."""
    if call == "heartbeat":
        return [], lambda _count: '[2,"1","Heartbeat",{}]'
    transaction_id = f"T-{station_id}"
    started = json.dumps(
        [2, "s", "TransactionEvent", _transaction_event(transaction_id, 0, "Started")]
    )

    def updated(count: int) -> str:
        payload = _transaction_event(transaction_id, count + 1, "Updated")
        return json.dumps([2, str(count), "TransactionEvent", payload])

    return [started], updated


async def _client(url: str, connections: int, call: str, prefix: str) -> None:
    """Boot `connections` stations, say `ready`, then obey the driver's lines on stdin:
    `go` starts the CALL loops, `mark` answers the round trips so far (and the latencies
    since the last mark), `stop` ends the process."""
    import trio
    from trio_websocket import open_websocket_url

    counts = {"round_trips": 0, "errors": 0}
    latencies_s: list[float] = []
    go = trio.Event()
    connecting = trio.Semaphore(64)

    async def station(index: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        station_id = f"{prefix}{index:05d}"
        once, repeated = _frames(call, station_id)
        # At most 64 handshakes at a time, so a thousand connections do not all time out in
        # the CSMS's accept queue at once.
        await connecting.acquire()
        holding_slot = True
        try:
            async with open_websocket_url(
                f"{url}/{station_id}", subprotocols=["ocpp2.1"], connect_timeout=120
            ) as connection:
                for frame in [BOOT_FRAME, *once]:
                    await connection.send_message(frame)
                    answer = await connection.get_message()
                    if not answer.startswith("[3,"):
                        raise RuntimeError(f"{station_id}: {frame[:40]}... was answered {answer}")
                connecting.release()
                holding_slot = False
                task_status.started()
                await go.wait()
                count = 0
                while True:
                    frame = repeated(count)
                    sent_at = time.perf_counter()
                    await connection.send_message(frame)
                    answer = await connection.get_message()
                    latencies_s.append(time.perf_counter() - sent_at)
                    if answer.startswith("[3,"):
                        counts["round_trips"] += 1
                    else:
                        counts["errors"] += 1
                    count += 1
        finally:
            if holding_slot:
                connecting.release()

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as booting:
            for index in range(connections):
                booting.start_soon(nursery.start, station, index)
        print("ready", flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buffer = b""
        while True:
            chunk = await stdin.receive_some(4096)
            if not chunk:
                break
            buffer += chunk
            *commands, buffer = buffer.split(b"\n")
            if any(command.strip() == b"stop" for command in commands):
                break
            for command in commands:
                if command.strip() == b"go":
                    go.set()
                elif command.strip() == b"mark":
                    ordered = sorted(latencies_s)
                    latencies_s.clear()
                    report = {
                        **counts,
                        "p50_ms": ordered[len(ordered) // 2] * 1000 if ordered else None,
                        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000 if ordered else None,
                    }
                    print(json.dumps(report), flush=True)
        nursery.cancel_scope.cancel()


# -- the driver ----------------------------------------------------------------------------


class Reader:
    """Reads a process's stdout lines in a thread, so its pipe never fills."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._condition = threading.Condition()
        self._closed = False
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._condition:
                self._lines.append(line.rstrip("\n"))
                self._condition.notify_all()
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def next_line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while not self._lines:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    why = "ended" if self._closed else f"said nothing for {timeout_s:g} s"
                    raise RuntimeError(f"the process {why}")
                self._condition.wait(remaining)
            return self._lines.pop(0)


def _stop(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def one_run(processes: int, clients: int, connections: int, call: str, args: Any) -> dict[str, Any]:
    csms = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetsim.cli",
            "csms",
            "--port",
            "0",
            "--processes",
            str(processes),
            "--status-interval",
            "3600",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    client_processes: list[subprocess.Popen[str]] = []
    try:
        assert csms.stdout is not None
        csms_lines = Reader(csms.stdout)
        match = _FIRST_LINE.search(csms_lines.next_line(60))
        assert match is not None
        url = f"ws://{match.group(1)}:{match.group(2)}/ocpp"
        pids = [csms.pid]
        if processes > 1:
            pids += [int(pid) for pid in _PIDS.findall(csms_lines.next_line(10))]
            assert len(pids) == processes + 1, pids
        rss_before_kb = sum(procstat.rss_kb(pid) for pid in pids)
        readers = []
        for number in range(clients):
            client = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--client",
                    url,
                    "--connections",
                    str(connections),
                    "--call",
                    call,
                    "--prefix",
                    f"C{number}-",
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            client_processes.append(client)
            assert client.stdout is not None
            readers.append(Reader(client.stdout))
        for reader in readers:
            line = reader.next_line(300)
            if line != "ready":
                raise RuntimeError(f"a client said {line!r} instead of ready")
        time.sleep(1.0)
        rss_connected_kb = sum(procstat.rss_kb(pid) for pid in pids)

        def tell(command: str) -> None:
            for client in client_processes:
                assert client.stdin is not None
                client.stdin.write(command + "\n")
                client.stdin.flush()

        def mark() -> tuple[list[dict[str, Any]], float, float, float, tuple[int, int]]:
            tell("mark")
            reports = [json.loads(reader.next_line(30)) for reader in readers]
            return (
                reports,
                time.perf_counter(),
                sum(procstat.cpu_s(pid) for pid in pids),
                sum(procstat.cpu_s(client.pid) for client in client_processes),
                procstat.machine_ticks(),
            )

        load_1min = os.getloadavg()[0]
        tell("go")
        time.sleep(args.warmup)
        before, wall_0, csms_cpu_0, clients_cpu_0, ticks_0 = mark()
        time.sleep(args.window)
        after, wall_1, csms_cpu_1, clients_cpu_1, ticks_1 = mark()
        tell("stop")
        wall_s = wall_1 - wall_0
        round_trips = sum(
            a["round_trips"] - b["round_trips"] for a, b in zip(after, before, strict=True)
        )
        errors = sum(a["errors"] for a in after)
        if errors:
            raise RuntimeError(f"the CSMS answered {errors} CALLs with a CALLERROR")
        csms_cpu = csms_cpu_1 - csms_cpu_0
        busy = (ticks_1[0] - ticks_0[0]) / max(1, ticks_1[1] - ticks_0[1])
        p50s = [a["p50_ms"] for a in after if a["p50_ms"] is not None]
        p99s = [a["p99_ms"] for a in after if a["p99_ms"] is not None]
        return {
            "round_trips": round_trips,
            "round_trips_per_s": round_trips / wall_s,
            "csms_cpu_us_per_round_trip": csms_cpu / max(1, round_trips) * 1e6,
            "csms_cpu_percent": csms_cpu / wall_s * 100,
            "clients_cpu_percent": (clients_cpu_1 - clients_cpu_0) / wall_s * 100,
            "machine_busy_percent": busy * 100,
            "csms_rss_kb_per_connection": (rss_connected_kb - rss_before_kb)
            / (clients * connections),
            "p50_ms": statistics.median(p50s) if p50s else None,
            "p99_ms_worst_client": max(p99s) if p99s else None,
            "load_1min_before": load_1min,
        }
    finally:
        for client in client_processes:
            if client.poll() is None and client.stdin is not None:
                try:
                    client.stdin.write("stop\n")
                    client.stdin.flush()
                except BrokenPipeError:
                    pass
        for client in client_processes:
            _stop(client, signal.SIGTERM)
        _stop(csms)


def capacity(processes: int, cpu_us_per_round_trip: float) -> dict[str, float]:
    """What the CPU cost means when each of the `processes` may use 70 % of its own core."""
    round_trips_per_s = CPU_BUDGET_SHARE * processes / (cpu_us_per_round_trip / 1e6)
    return {
        "round_trips_per_s_at_70_percent_cpu": round_trips_per_s,
        "reference_stations_at_70_percent_cpu": round_trips_per_s / REFERENCE_CALLS_PER_STATION_S,
    }


COLUMNS: Sequence[tuple[str, str, str]] = (
    ("round_trips_per_s", "rt/s", "{:.0f}"),
    ("csms_cpu_us_per_round_trip", "CSMS µs/rt", "{:.1f}"),
    ("csms_cpu_percent", "CSMS cpu%", "{:.0f}"),
    ("clients_cpu_percent", "clients cpu%", "{:.0f}"),
    ("machine_busy_percent", "machine busy%", "{:.0f}"),
    ("csms_rss_kb_per_connection", "CSMS KB/conn", "{:.1f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms_worst_client", "p99 ms", "{:.1f}"),
)


def _cell(value: Any, template: str) -> str:
    return "-" if value is None else template.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--processes", type=int, action="append", help="default: 1 and 2")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=500, help="per client process")
    parser.add_argument("--call", choices=CALLS, action="append", help="default: heartbeat")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds")
    parser.add_argument("--window", type=float, default=10.0, help="seconds")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/csms_capacity.json")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="C-", help=argparse.SUPPRESS)
    args = parser.parse_args()
    calls = args.call or ["heartbeat"]
    if args.client:
        import trio

        trio.run(_client, args.client, args.connections, calls[0], args.prefix)
        return

    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine_cpus": os.cpu_count(),
        "runs": args.runs,
        "clients": args.clients,
        "connections_per_client": args.connections,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "reference_calls_per_station_s": REFERENCE_CALLS_PER_STATION_S,
        "cpu_budget_share_per_process": CPU_BUDGET_SHARE,
        "cases": [],
    }
    print(
        f"{args.clients} client processes x {args.connections} connections, "
        f"{args.warmup:g} s warm-up, {args.window:g} s window, medians of {args.runs}"
    )
    header = " ".join(f"{title:>13}" for _, title, _ in COLUMNS)
    print(f"{'call':>17} {'K':>2} {header} {'stations@70%':>13}")
    for call in calls:
        for processes in args.processes or [1, 2]:
            runs = [
                one_run(processes, args.clients, args.connections, call, args)
                for _ in range(args.runs)
            ]
            medians = {
                key: statistics.median(values)
                for key in runs[0]
                if (values := [run[key] for run in runs if run[key] is not None])
            }
            estimate = capacity(processes, medians["csms_cpu_us_per_round_trip"])
            report["cases"].append(
                {
                    "call": call,
                    "processes": processes,
                    "median": medians,
                    "capacity": estimate,
                    "runs": runs,
                }
            )
            cells = " ".join(
                f"{_cell(medians.get(key), template):>13}" for key, _, template in COLUMNS
            )
            stations = estimate["reference_stations_at_70_percent_cpu"]
            print(f"{call:>17} {processes:>2} {cells} {stations:>13,.0f}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
