"""Block N, diagnostics: log uploads (GetLog, N01) and a customer's data (CustomerInformation,
N09 report, N10 clear).

GetLog asks the station to upload a log to `log.remoteLocation`.  The station keeps its
diagnostics log and its security log from the moment it started (the run's start); the file it
uploads holds the part of that span inside `oldestTimestamp`..`latestTimestamp`, and its name,
answered in `filename`, says which station, which log and which span.  When the span holds
nothing (the CSMS asked for a time before the station started, or after now) the answer is
Accepted without a filename, as the spec says, and nothing is uploaded.  OCPP 2.1's
DataCollectorLog is Rejected: the station has no data collector.

The upload is simulated: no traffic leaves the machine.  It takes `config.log_upload_s`
simulated seconds and fails with the share `config.log_upload_failure_share`, drawn from
(station, requestId, attempt) so a run is reproducible.  LogStatusNotification follows it:
Uploading at each attempt, then Uploaded, or UploadFailure once the `retries` are spent
(`retryInterval` seconds apart; the station retries once, a minute later, when the request
does not say).  A remoteLocation that is no URL ends the upload with BadMessage; one whose
protocol is not in OCPPCommCtrlr.FileTransferProtocols with NotSupportedOperation.  A new
GetLog while an upload runs cancels it: the answer is AcceptedCanceled, the cancelled upload's
requestId gets an AcceptedCanceled notification and the new upload begins.  A reboot ends an
upload without a word, as a real station loses it.  A LogStatusNotification made while the
station is offline is not queued: OCPP queues transaction-related messages and security events,
the rest only with OCPPCommCtrlr.QueueAllMessages, which this station does not offer.
TriggerMessage LogStatusNotification answers Uploading with the requestId while an upload runs,
and Idle otherwise, which is how a CSMS that missed a status learns the current one.

CustomerInformation names a customer by idToken, customerIdentifier or customerCertificate.
What the station holds about an idToken: the authorization cache's entry (block C, through the
station's `cached_id_token_info` hook), the local authorization list's entry (block D, through
`local_id_token_info`), the transactions running with it and the transaction events about
them not yet delivered.  It holds nothing keyed by a customerIdentifier and no certificates
(SecurityCtrlr.CertificateEntries is 0), and says so.  The report goes out in
NotifyCustomerInformation messages of at most 512 characters of `data`, `tbc` on all but the
last, `seqNo` from 0.  `clear` removes the cache entry; it leaves the local list, which only the
CSMS changes (SendLocalList), and the transactions, whose events the CSMS needs to bill them.
A request with neither `report` nor `clear` is Rejected; one naming no customer is Invalid.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import trio

from ...link import Answer
from ..core import Block, IdToken, Restarted, StationCore, TriggerTarget, refused
from ..id_tokens import TokenInfo, epoch_s, token_key

__all__ = [
    "BLOCK",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_INTERVAL_S",
    "DATA_PER_MESSAGE",
    "DiagnosticsState",
    "customer_data_parts",
]

#: Retries when GetLog does not say how many (the spec leaves it to the station).
DEFAULT_RETRIES = 1
#: Seconds between attempts when GetLog does not say.
DEFAULT_RETRY_INTERVAL_S = 60
#: NotifyCustomerInformation's `data` holds at most this many characters.
DATA_PER_MESSAGE = 512
#: The logs a station keeps.
_LOG_TYPES = ("DiagnosticsLog", "SecurityLog")
#: URL schemes by the names OCPPCommCtrlr.FileTransferProtocols lists them.
#: statusInfo.reasonCode (at most 20 characters) of each status that says why (2.1).
_REASON_CODES = {
    "BadMessage": "InvalidURL",
    "NotSupportedOperation": "UnsupportedProtocol",
    "UploadFailure": "UploadFailed",
}
_PROTOCOLS = {"ftp": "FTP", "ftps": "FTPS", "http": "HTTP", "https": "HTTPS", "sftp": "SFTP"}


class _Upload:
    """One log upload: its request, and whether a newer request or a reboot cancelled it.

    Cancelling interrupts the upload's waits only, never a notification on its way, so the
    CSMS hears every status in order.
    """

    __slots__ = ("_waiting", "cancelled", "request_id")

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.cancelled = False
        self._waiting: trio.CancelScope | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def wait(self, station: StationCore, duration_s: float) -> bool:
        """Wait `duration_s` simulated seconds; False when the upload was cancelled."""
        if self.cancelled:
            return False
        with trio.CancelScope() as self._waiting:
            await station.clock.sleep(duration_s)
        self._waiting = None
        return not self.cancelled


class DiagnosticsState:
    """One station's diagnostics (made by its first GetLog): the upload that runs, if any."""

    __slots__ = ("upload",)

    def __init__(self) -> None:
        self.upload: _Upload | None = None


# -- GetLog (N01) -----------------------------------------------------------------------------


def _day_stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _destination_problem(station: StationCore, remote_location: str) -> tuple[str, str] | None:
    """Why the station could not upload to `remote_location`: (status, reason), or None."""
    try:
        parts = urlsplit(remote_location)
    except ValueError:
        parts = None
    if parts is None or not parts.scheme or not parts.netloc:
        return "BadMessage", f"remoteLocation {remote_location!r} is not a URL"
    protocol = _PROTOCOLS.get(parts.scheme.lower())
    spoken = station.device_model.get("OCPPCommCtrlr", "FileTransferProtocols").split(",")
    if protocol is None or protocol not in spoken:
        return (
            "NotSupportedOperation",
            f"the station uploads over {', '.join(spoken)} (OCPPCommCtrlr."
            f"FileTransferProtocols), not {parts.scheme}",
        )
    return None


def _upload_fails(station: StationCore, request_id: int, attempt: int) -> bool:
    share = station.config.log_upload_failure_share
    if share <= 0:
        return False
    return random.Random(f"{station.id}/log/{request_id}/{attempt}").random() < share


async def _notify(
    station: StationCore, status: str, request_id: int | None, reason: str | None = None
) -> None:
    payload: dict[str, Any] = {"status": status}
    if request_id is not None:
        payload["requestId"] = request_id
    if reason is not None and station.config.ocpp_version != "2.0.1":
        payload["statusInfo"] = {
            "reasonCode": _REASON_CODES[status],
            "additionalInfo": reason[:1024],
        }
    await station.call("LogStatusNotification", payload)


async def _run_upload(
    station: StationCore,
    upload: _Upload,
    cancelled: int | None,
    remote_location: str,
    retries: int,
    retry_interval_s: float,
) -> None:
    """The upload, on simulated time; `cancelled` is the requestId of the upload it replaced."""
    if cancelled is not None:
        await _notify(station, "AcceptedCanceled", cancelled)
    if upload.cancelled:
        return
    outcome = await _attempts(station, upload, remote_location, retries, retry_interval_s)
    if outcome is None:
        return  # cancelled
    # The upload is over before the CSMS hears so: a GetLog it sends on hearing it starts a
    # new upload rather than cancelling this one.
    state = station.block_state(BLOCK)
    if state.upload is upload:
        state.upload = None
    await _notify(station, outcome[0], upload.request_id, outcome[1])


async def _attempts(
    station: StationCore,
    upload: _Upload,
    remote_location: str,
    retries: int,
    retry_interval_s: float,
) -> tuple[str, str | None] | None:
    """Try to upload; the final status and why, or None when the upload was cancelled."""
    problem = _destination_problem(station, remote_location)
    if problem is not None:
        return problem
    attempts = 1 + retries
    for attempt in range(attempts):
        if attempt and not await upload.wait(station, retry_interval_s):
            return None
        await _notify(station, "Uploading", upload.request_id)
        if not await upload.wait(station, station.config.log_upload_s):
            return None
        if not _upload_fails(station, upload.request_id, attempt):
            return "Uploaded", None
    return "UploadFailure", f"the upload to {remote_location} failed {attempts} times"


def _log_span(station: StationCore, log: Mapping[str, Any]) -> tuple[float, float] | None:
    """The epoch span of the log the request asks for, inside what the station holds; None
    when they do not overlap.  ValueError when a timestamp is no dateTime."""
    held_from = station.clock.epoch_s(0.0)
    now = station.clock.epoch_s()
    oldest = log.get("oldestTimestamp")
    latest = log.get("latestTimestamp")
    start = held_from if oldest is None else max(held_from, epoch_s(str(oldest)))
    end = now if latest is None else min(now, epoch_s(str(latest)))
    return None if start > end else (start, end)


def get_log(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    log_type = str(payload["logType"])
    if log_type not in _LOG_TYPES:
        return refused("UnsupportedRequest", f"this station keeps no {log_type}")
    log: Mapping[str, Any] = payload["log"]
    oldest, latest = log.get("oldestTimestamp"), log.get("latestTimestamp")
    try:
        span = _log_span(station, log)
        if oldest is not None and latest is not None and epoch_s(oldest) > epoch_s(latest):
            return refused(
                "InvalidValue", f"oldestTimestamp {oldest} is after latestTimestamp {latest}"
            )
    except ValueError:
        return refused("InvalidValue", "oldestTimestamp or latestTimestamp is not a dateTime")
    if span is None:
        return Answer({"status": "Accepted"})  # no logging information in that span
    request_id = int(payload["requestId"])
    retries = max(0, int(payload.get("retries", DEFAULT_RETRIES)))
    retry_interval_s = max(0, int(payload.get("retryInterval", DEFAULT_RETRY_INTERVAL_S)))
    state = station.block_state(BLOCK)
    running = state.upload
    cancelled: int | None = None
    if running is not None:
        running.cancel()
        cancelled = running.request_id
    upload = state.upload = _Upload(request_id)
    filename = f"{station.id}-{log_type}-{_day_stamp(span[0])}-{_day_stamp(span[1])}.log"

    async def then() -> None:
        await _run_upload(
            station, upload, cancelled, log["remoteLocation"], retries, retry_interval_s
        )

    status = "Accepted" if cancelled is None else "AcceptedCanceled"
    return Answer({"status": status, "filename": filename}, then=then)


def _trigger_log_status(station: StationCore, target: TriggerTarget) -> Answer:
    """Uploading with the requestId while an upload runs, else Idle (no requestId)."""
    state = station.peek_block_state(BLOCK)
    upload = None if state is None else state.upload

    async def send() -> None:
        payload: dict[str, Any] = {"status": "Idle"}
        if upload is not None:
            payload = {"status": "Uploading", "requestId": upload.request_id}
        await station.call("LogStatusNotification", payload, before_sync=True)

    return Answer({"status": "Accepted"}, then=send)


async def _restarted(station: StationCore, event: Restarted) -> None:
    """A reboot loses the upload that ran."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.upload is not None:
        state.upload.cancel()
        state.upload = None


# -- CustomerInformation (N09, N10) -----------------------------------------------------------


def _describe(store: str, info: TokenInfo, now: float) -> str:
    text = f"{store}: status {info.status}"
    if info.group is not None:
        text += f", group {info.group}"
    if info.expires_s != float("inf"):
        state = "expired" if info.expired(now) else "valid until"
        text += f", {state} {_iso(info.expires_s)}"
    return text


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_records(station: StationCore, id_token: IdToken, clear: bool) -> Iterator[str]:
    """What the station holds about `id_token`, one record per store; the cache entry is
    removed when `clear`."""
    key = token_key(id_token)
    now = station.clock.epoch_s()
    cached = station.cached_id_token_info(id_token, forget=clear)
    if cached is not None:
        yield _describe("authorization cache", cached, now)
    listed = station.local_id_token_info(id_token)
    if listed is not None:
        yield _describe("local authorization list", listed, now)
    for evse in station.transactions():
        transaction = evse.transaction
        if transaction is None or transaction.id_token is None:
            continue
        if token_key(transaction.id_token) != key:
            continue
        yield (
            f"transaction {transaction.id} on EVSE {evse.id} since "
            f"{_iso(station.clock.epoch_s(transaction.started_s))}"
        )
    queued: dict[str, int] = {}
    for event in station.tx_queue:
        token = event.get("idToken")
        if token is not None and token_key(token) == key:
            transaction_id = str(event["transactionInfo"]["transactionId"])
            queued[transaction_id] = queued.get(transaction_id, 0) + 1
    for transaction_id, count in queued.items():
        yield f"{count} undelivered TransactionEvent(s) of transaction {transaction_id}"


def customer_data_parts(data: str) -> list[str]:
    """`data` cut into NotifyCustomerInformation parts of `DATA_PER_MESSAGE` characters."""
    return [data[i : i + DATA_PER_MESSAGE] for i in range(0, len(data), DATA_PER_MESSAGE)] or [""]


def customer_information(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    report = bool(payload["report"])
    clear = bool(payload["clear"])
    if not report and not clear:
        return refused("InvalidValue", "neither report nor clear is true: nothing to do")
    id_token: IdToken | None = payload.get("idToken")
    identifier = payload.get("customerIdentifier")
    certificate = payload.get("customerCertificate")
    if id_token is None and identifier is None and certificate is None:
        return refused(
            "MissingParam",
            "name the customer by idToken, customerIdentifier or customerCertificate",
            status="Invalid",
        )
    records: list[str] = []
    if id_token is not None:
        found = list(_token_records(station, id_token, clear))
        name = f"idToken {token_key(id_token)}"
        records.append(f"{name}: " + ("; ".join(found) if found else "no data held"))
    if identifier is not None:
        records.append(f"customerIdentifier {identifier}: no data held")
    if certificate is not None:
        records.append(
            f"customerCertificate {certificate['serialNumber']}: no data held "
            "(the station stores no certificates)"
        )
    if clear:
        records.append(
            "cleared: authorization cache entry; kept: the local authorization list, which "
            "the CSMS manages, and transactions, which the CSMS needs to bill"
        )
    if not report:
        return Answer({"status": "Accepted"})
    request_id = int(payload["requestId"])
    parts = customer_data_parts(". ".join(records))
    generated_at = station.clock.timestamp()

    async def send() -> None:
        for seq_no, part in enumerate(parts):
            message: dict[str, Any] = {
                "data": part,
                "seqNo": seq_no,
                "generatedAt": generated_at,
                "requestId": request_id,
            }
            if seq_no < len(parts) - 1:
                message["tbc"] = True
            if await station.call("NotifyCustomerInformation", message) is None:
                return  # the CSMS cannot take the rest in order

    return Answer({"status": "Accepted"}, then=send)


BLOCK: Block[DiagnosticsState] = Block(
    letter="N",
    name="diagnostics",
    handlers={"GetLog": get_log, "CustomerInformation": customer_information},
    follow_ups={
        "GetLog": ("LogStatusNotification",),
        "CustomerInformation": ("NotifyCustomerInformation",),
    },
    triggers={"LogStatusNotification": _trigger_log_status},
    reactions={Restarted: _restarted},
    new_state=DiagnosticsState,
)
