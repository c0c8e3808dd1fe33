"""Block L, firmware management: updating the station's firmware, and publishing firmware as a
Local Controller.

L01/L02  UpdateFirmware runs the status sequence on simulated time, each step reported in a
         FirmwareStatusNotification carrying the update's requestId (L01.FR.01):
         DownloadScheduled while retrieveDateTime is ahead; Downloading, then Downloaded or
         DownloadFailed -- retried `retries` times, `retryInterval` apart; for signed firmware
         (a `signature`) SignatureVerified or InvalidSignature; InstallScheduled while
         installDateTime is ahead; then, once no transaction runs (L01.FR.06), Installing and
         InstallRebooting, a reboot with reason FirmwareUpdate, the new firmwareVersion in
         BootNotification, and Installed.  An installation may end InstallationFailed or
         InstallVerificationFailed instead; the old firmware then runs on without a reboot.
         A signingCertificate that is not a PEM certificate is answered InvalidCertificate.
         A new UpdateFirmware cancels one that has not begun installing (AcceptedCanceled,
         L01.FR.24) and is Rejected while one installs (L01.FR.27).
         While the installation waits for transactions to end, every EVSE without one is taken
         out of service, and so is each EVSE whose transaction ends meanwhile (L01.FR.07): its
         connectors report Unavailable and no new driver is admitted there.  They come back
         once the new firmware is up (before the station boots and reports its connectors), or
         at once when the update fails or is superseded.  Only EVSEs that were in service are
         taken, so a ChangeAvailability Inoperative made before the update outlives it.
L03/L04  PublishFirmware, on a Local Controller only (`FirmwareConfig.local_controller`):
         Downloading, Downloaded (or DownloadFailed, with retries), ChecksumVerified (or
         InvalidChecksum), then Published with the location the stations behind it download
         from (or PublishFailed).  UnpublishFirmware stops serving it.  Any other station
         answers PublishFirmware Rejected, saying why: it publishes nothing.

SecurityEventNotification reports FirmwareUpdated, InvalidFirmwareSignature and
InvalidFirmwareSigningCertificate, as the security events list asks; block A sends them, and
queues them while the station is offline (A04.FR.02).  A FirmwareStatusNotification or
PublishFirmwareStatusNotification made while offline is not queued: OCPP asks a station to
queue transaction-related messages and security events only (the others just with
OCPPCommCtrlr.QueueAllMessages, which this station does not offer), and a CSMS that missed one
asks for the current status with TriggerMessage.

Nothing leaves the machine: the firmware location is never fetched.  Each step takes the
simulated time of the scenario (`stations.firmware`), and whether a step fails is drawn per
(station, request, step, attempt) from the scenario's failure shares, so a run is reproducible.
The new firmware's version is the file name of its location without its extension
(`.../fleetsim-2.0.bin` installs `fleetsim-2.0`).  TriggerMessage reports the update or publication
under way with its last status and requestId, or Idle when there is none.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from ...link import Answer
from ..core import (
    Block,
    Booted,
    ConnectorStatusChanged,
    Restarted,
    SecurityEventOccurred,
    StationCore,
    TransactionEnded,
    TriggerTarget,
    refused,
)

__all__ = ["BLOCK", "firmware_version_of", "step_fails"]

#: The wait between download attempts when UpdateFirmware/PublishFirmware names none, in
#: simulated seconds (the station decides, says OCPP).
DEFAULT_RETRY_INTERVAL_S = 60
#: Statuses from which an update can no longer be called off: the new image is being written.
_INSTALLING = frozenset({"Installing", "InstallRebooting"})
#: BootNotification's firmwareVersion holds at most 50 characters.
_VERSION_MAX = 50
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclass(slots=True, eq=False)
class _Transfer:
    """One firmware update or publication under way."""

    request_id: int
    location: str
    retries: int
    retry_interval_s: float
    #: Cancelled when a newer request supersedes this one.
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    status: str = ""


@dataclass(slots=True, eq=False)
class _Update(_Transfer):
    retrieve_at_s: float = 0.0
    install_at_s: float | None = None
    signed: bool = False
    version: str = ""


@dataclass(slots=True, eq=False)
class _Publication(_Transfer):
    checksum: str = ""
    published_at: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FirmwareState:
    """Per station that ever received UpdateFirmware or PublishFirmware."""

    update: _Update | None = None
    publication: _Publication | None = None
    #: Set when the last transaction has ended, for an installation that waits for it.
    idle: trio.Event | None = None
    #: EVSEs this block took out of service while an installation waits (L01.FR.07).
    held_evse_ids: list[int] = field(default_factory=list)


# -- deterministic draws and names ---------------------------------------------------------------


def step_fails(station_id: str, request_id: int, step: str, attempt: int, share: float) -> bool:
    """Whether this attempt at this step of this request fails on this station: drawn from the
    four of them, so a run (and a rerun) fails the same steps of the same stations."""
    if share <= 0.0:
        return False
    return random.Random(f"{station_id}/{request_id}/{step}/{attempt}").random() < share


def firmware_version_of(location: str, request_id: int) -> str:
    """The version a firmware image at `location` installs: its file name without extension."""
    name = location.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    while "." in name:
        stem, suffix = name.rsplit(".", 1)
        if not stem or not suffix.isalpha():
            break
        name = stem
    return (name or f"update-{request_id}")[:_VERSION_MAX]


def _sim_s(station: StationCore, timestamp: str) -> float:
    """Simulated seconds of an OCPP date-time."""
    moment = dt.datetime.fromisoformat(timestamp.upper().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() - station.clock.epoch_s(0.0)


# -- talking to the CSMS ------------------------------------------------------------------------


async def _report(station: StationCore, update: _Update, status: str, final: bool = False) -> None:
    """Report a new status of `update`; a `final` one ends it first, so that from then on a
    trigger reports Idle and a new UpdateFirmware is simply Accepted."""
    update.status = status
    state = station.peek_block_state(BLOCK)
    if final and state is not None and state.update is update:
        state.update = None
    await station.call(
        "FirmwareStatusNotification", {"status": status, "requestId": update.request_id}
    )


async def _report_publication(
    station: StationCore, publication: _Publication, status: str, final: bool = False
) -> None:
    """Report a new status of `publication`; a `final` failure forgets it first (nothing is
    published, so UnpublishFirmware finds NoFirmware)."""
    publication.status = status
    state = station.peek_block_state(BLOCK)
    if final and state is not None and state.publication is publication:
        state.publication = None
    payload: dict[str, Any] = {"status": status, "requestId": publication.request_id}
    if status == "Published":
        payload["location"] = publication.published_at
    await station.call("PublishFirmwareStatusNotification", payload)


async def _security_event(station: StationCore, kind: str, tech_info: str) -> None:
    """Hand a security event to block A, which reports it even if the station is offline."""
    await station.emit(SecurityEventOccurred(kind, station.clock.timestamp(), tech_info[:255]))


# -- L01/L02: UpdateFirmware ----------------------------------------------------------------------


def update_firmware(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    firmware = payload["firmware"]
    request_id = int(payload["requestId"])
    certificate = firmware.get("signingCertificate")
    if certificate is not None and _PEM_CERTIFICATE not in certificate:

        async def report_bad_certificate() -> None:
            await _security_event(
                station,
                "InvalidFirmwareSigningCertificate",
                f"UpdateFirmware {request_id}: the signing certificate is not a PEM certificate",
            )

        answer = refused(
            "InvalidCertificate",
            "the signingCertificate is not a PEM-encoded X.509 certificate",
            status="InvalidCertificate",
        )
        return Answer(answer.payload, then=report_bad_certificate)
    state = station.block_state(BLOCK)
    running = state.update
    status = "Accepted"
    if running is not None:
        if running.status in _INSTALLING:
            return refused(
                "InstallInProgress",
                f"firmware update {running.request_id} is installing and cannot be canceled",
            )
        running.scope.cancel()
        status = "AcceptedCanceled"
    location = str(firmware["location"])
    install_at = firmware.get("installDateTime")
    update = state.update = _Update(
        request_id=request_id,
        location=location,
        retries=int(payload.get("retries", 0)),
        retry_interval_s=float(payload.get("retryInterval", DEFAULT_RETRY_INTERVAL_S)),
        retrieve_at_s=_sim_s(station, firmware["retrieveDateTime"]),
        install_at_s=None if install_at is None else _sim_s(station, install_at),
        signed="signature" in firmware,
        version=firmware_version_of(location, request_id),
    )

    async def run() -> None:
        try:
            with update.scope:
                await _run_update(station, update)
        finally:
            if update.status != "InstallRebooting":
                # Failed or superseded: the old firmware runs on, and so does charging.
                _release_held_evses(station)

    return Answer({"status": status}, then=run)


async def _run_update(station: StationCore, update: _Update) -> None:
    """The update's steps, up to a failure or to the reboot into the new firmware (the update
    then ends with Installed after the boot: `_booted`)."""
    clock = station.clock
    settings = station.config.firmware
    request_id = update.request_id
    if update.retrieve_at_s > clock.sim_now():
        await _report(station, update, "DownloadScheduled")
        await clock.sleep_until(update.retrieve_at_s)
    if not await _download(station, update, _report, "download", settings.download_failure_share):
        return
    if update.signed:
        await clock.sleep(settings.verify_s)
        if step_fails(station.id, request_id, "signature", 0, settings.invalid_signature_share):
            await _report(station, update, "InvalidSignature", final=True)
            await _security_event(
                station,
                "InvalidFirmwareSignature",
                f"UpdateFirmware {request_id}: the signature of {update.version} does not match",
            )
            return
        await _report(station, update, "SignatureVerified")
    if update.install_at_s is not None and update.install_at_s > clock.sim_now():
        await _report(station, update, "InstallScheduled")
        await clock.sleep_until(update.install_at_s)
    await _wait_for_no_transaction(station)
    await _report(station, update, "Installing")
    await clock.sleep(settings.install_s)
    if step_fails(station.id, request_id, "install", 0, settings.install_failure_share):
        await _report(station, update, "InstallationFailed", final=True)
        return
    if step_fails(station.id, request_id, "verify", 0, settings.install_verification_failure_share):
        await _report(station, update, "InstallVerificationFailed", final=True)
        return
    await _report(station, update, "InstallRebooting")
    station.firmware_version = update.version
    station.reboot("FirmwareUpdate")


async def _download(
    station: StationCore,
    transfer: Any,
    report: Callable[[StationCore, Any, str, bool], Awaitable[None]],
    step: str,
    failure_share: float,
) -> bool:
    """Download attempts until one succeeds (True) or the retries are spent (False), each
    reported with `report`; a failed attempt is retried after the transfer's retryInterval."""
    settings = station.config.firmware
    for attempt in range(transfer.retries + 1):
        if attempt:
            await station.clock.sleep(transfer.retry_interval_s)
        await report(station, transfer, "Downloading", False)
        await station.clock.sleep(settings.download_s)
        if not step_fails(station.id, transfer.request_id, step, attempt, failure_share):
            await report(station, transfer, "Downloaded", False)
            return True
        await report(station, transfer, "DownloadFailed", attempt == transfer.retries)
    return False


#: Simulated seconds between looks at the transaction queue while it still holds the events
#: of transactions that ended before an installation (a few looks, once per installation).
_QUEUE_LOOK_S = 1.0


async def _wait_for_no_transaction(station: StationCore) -> None:
    """L01.FR.06: the new firmware is installed only once every transaction has ended.

    The last transaction's Ended event may still be on its way (another message was being
    delivered when it was queued); Installing waits for it, within the message timeout, so the
    CSMS hears that the transaction ended before it hears the installation begin.
    """
    state = station.block_state(BLOCK)
    waited = False
    if station.transactions():
        _hold_idle_evses(station)
    while station.transactions():
        state.idle = trio.Event()
        await state.idle.wait()
        waited = True
    state.idle = None
    if waited:
        looks = int(station.config.message_timeout_s / _QUEUE_LOOK_S)
        for _ in range(looks):
            if not (station.tx_queue and station.online):
                break
            await station.clock.sleep(_QUEUE_LOOK_S)


def _hold_idle_evses(station: StationCore) -> None:
    """L01.FR.07: take every EVSE in service without a transaction out of service while the
    installation waits, and say so (block G reports the connectors' new status)."""
    state = station.block_state(BLOCK)
    held = [evse for evse in station.evses if evse.operative and evse.transaction is None]
    if not held:
        return
    for evse in held:
        evse.operative = False
        state.held_evse_ids.append(evse.id)
    station.post(ConnectorStatusChanged())


def _release_held_evses(station: StationCore) -> None:
    """Put the EVSEs `_hold_idle_evses` took back in service."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.held_evse_ids:
        return
    for evse_id in state.held_evse_ids:
        evse = station.evse(evse_id)
        if evse is not None:
            evse.operative = True
    state.held_evse_ids.clear()
    station.post(ConnectorStatusChanged())


def _transaction_ended(station: StationCore, event: TransactionEnded) -> None:
    state = station.peek_block_state(BLOCK)
    if state is None or state.idle is None:
        return
    # The EVSE is free now; until the new firmware is installed no transaction starts there.
    _hold_idle_evses(station)
    if not station.transactions():
        state.idle.set()


def _restarted(station: StationCore, event: Restarted) -> None:
    """Up on the new firmware: the EVSEs held for the installation are back in service before
    the station boots, so the connectors it reports after BootNotification are Available."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.update is not None and state.update.status == "InstallRebooting":
        _release_held_evses(station)


async def _booted(station: StationCore, event: Booted) -> None:
    """Up on the new firmware: report the update Installed (after the connectors' status, which
    block G reports first) and the FirmwareUpdated security event."""
    state = station.peek_block_state(BLOCK)
    if state is None or not event.registered:
        return
    update = state.update
    if update is None or update.status != "InstallRebooting":
        return
    state.update = None
    await _report(station, update, "Installed")
    await _security_event(
        station,
        "FirmwareUpdated",
        f"UpdateFirmware {update.request_id}: firmware {update.version} installed",
    )


# -- L03/L04: PublishFirmware, UnpublishFirmware ------------------------------------------------


def publish_firmware(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    if not station.config.firmware.local_controller:
        return refused(
            "UnsupportedRequest",
            "this station is not a Local Controller, so it publishes no firmware to other "
            "stations (L03); set stations.firmware.local_controller to make it one",
        )
    state = station.block_state(BLOCK)
    running = state.publication
    if running is not None and running.status not in ("Published", ""):
        return refused(
            "InProgress",
            f"firmware publication {running.request_id} is still downloading or verifying",
        )
    checksum = str(payload["checksum"])
    publication = state.publication = _Publication(
        request_id=int(payload["requestId"]),
        location=str(payload["location"]),
        retries=int(payload.get("retries", 0)),
        retry_interval_s=float(payload.get("retryInterval", DEFAULT_RETRY_INTERVAL_S)),
        checksum=checksum,
    )

    async def run() -> None:
        with publication.scope:
            await _publish(station, publication)

    return Answer({"status": "Accepted"}, then=run)


async def _publish(station: StationCore, publication: _Publication) -> bool:
    """The publication's steps; True when the firmware is published."""
    settings = station.config.firmware
    request_id = publication.request_id
    if not await _download(
        station, publication, _report_publication, "publish", settings.download_failure_share
    ):
        return False
    await station.clock.sleep(settings.verify_s)
    if step_fails(station.id, request_id, "checksum", 0, settings.invalid_signature_share):
        await _report_publication(station, publication, "InvalidChecksum", final=True)
        return False
    await _report_publication(station, publication, "ChecksumVerified")
    if step_fails(station.id, request_id, "serve", 0, settings.install_failure_share):
        await _report_publication(station, publication, "PublishFailed", final=True)
        return False
    # Where the stations behind this Local Controller fetch the image: its own file server.
    publication.published_at = [f"http://{station.id}.local/firmware/{publication.checksum}"]
    await _report_publication(station, publication, "Published")
    return True


def unpublish_firmware(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    state = station.peek_block_state(BLOCK)
    publication = None if state is None else state.publication
    if state is None or publication is None or publication.checksum != payload["checksum"]:
        return Answer({"status": "NoFirmware"})
    if publication.status != "Published":
        return Answer({"status": "DownloadOngoing"})
    state.publication = None
    return Answer({"status": "Unpublished"})


# -- TriggerMessage ------------------------------------------------------------------------------


def _trigger_firmware_status(station: StationCore, target: TriggerTarget) -> Answer:
    state = station.peek_block_state(BLOCK)
    update = None if state is None else state.update
    payload: dict[str, Any] = {"status": "Idle"}
    if update is not None and update.status:
        payload = {"status": update.status, "requestId": update.request_id}

    async def send() -> None:
        await station.call("FirmwareStatusNotification", payload, before_sync=True)

    return Answer({"status": "Accepted"}, then=send)


def _trigger_publish_status(station: StationCore, target: TriggerTarget) -> Answer:
    state = station.peek_block_state(BLOCK)
    publication = None if state is None else state.publication
    payload: dict[str, Any] = {"status": "Idle"}
    if publication is not None and publication.status:
        payload = {"status": publication.status, "requestId": publication.request_id}
        if publication.status == "Published":
            payload["location"] = publication.published_at

    async def send() -> None:
        await station.call("PublishFirmwareStatusNotification", payload, before_sync=True)

    return Answer({"status": "Accepted"}, then=send)


BLOCK: Block[FirmwareState] = Block(
    letter="L",
    name="firmware",
    handlers={
        "UpdateFirmware": update_firmware,
        "PublishFirmware": publish_firmware,
        "UnpublishFirmware": unpublish_firmware,
    },
    follow_ups={
        "UpdateFirmware": ("FirmwareStatusNotification",),
        "PublishFirmware": ("PublishFirmwareStatusNotification",),
    },
    triggers={
        "FirmwareStatusNotification": _trigger_firmware_status,
        "PublishFirmwareStatusNotification": _trigger_publish_status,
    },
    reactions={TransactionEnded: _transaction_ended, Booted: _booted, Restarted: _restarted},
    new_state=FirmwareState,
)
