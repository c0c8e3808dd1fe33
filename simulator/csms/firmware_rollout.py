"""`FirmwareRollout`: the embedded CSMS updating the firmware of a share of its stations (L01).

An operator's firmware rollout, as the scenario's `embedded_csms.firmware_rollout` describes it:
at one moment of the run the CSMS sends UpdateFirmware to the connected stations it picks (by a
hash of the station id, so a rerun picks the same ones), a bounded number at a time, and
follows each update through the FirmwareStatusNotifications the station sends for its
requestId.  What it learns -- the stations' answers and each station's sequence of statuses --
is what a CSMS team compares with their own back office's view after a `--fast` day.

The status notifications reach the rollout as the CSMS answers them (`response_overrides()`,
for `CsmsConfig.response_overrides`: the empty answer OCPP prescribes, built in the order the
messages arrive, where a reaction would run later as a task of its own); the moment itself is
the run's to keep: it calls `roll_out` when `at_s` has come.  Only a CSMS in the run's own
process can be asked, as for reservations.
"""

from __future__ import annotations

import base64
import zlib
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from ..clock import format_timestamp
from .policy import ResponseOverride

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["FINAL_STATUSES", "FirmwareRollout"]

#: The statuses an update ends with: after them the station sends nothing more for it.
FINAL_STATUSES = frozenset(
    {
        "Installed",
        "DownloadFailed",
        "InvalidSignature",
        "InstallationFailed",
        "InstallVerificationFailed",
    }
)

_PLACEHOLDER_CERTIFICATE = (
    "-----BEGIN CERTIFICATE-----\n"
    + base64.b64encode(b"fleetsim embedded CSMS: placeholder firmware signing certificate").decode()
    + "\n-----END CERTIFICATE-----\n"
)
_PLACEHOLDER_SIGNATURE = base64.b64encode(b"fleetsim embedded CSMS: placeholder signature").decode()


_EMPTY: Mapping[str, Any] = {}


class FirmwareRollout:
    """One UpdateFirmware for many stations, and what came of it."""

    def __init__(
        self,
        *,
        location: str,
        request_id: int = 1,
        share: float = 1.0,
        signed: bool = False,
        retries: int | None = None,
        retry_interval_s: int | None = None,
        install_after_s: float | None = None,
        max_parallel: int = 100,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self.location = location
        self.request_id = request_id
        self._share_below = round(share * 2**32)
        self._signed = signed
        self._retries = retries
        self._retry_interval_s = retry_interval_s
        self._install_after_s = install_after_s
        self._max_parallel = max_parallel
        #: The stations' answers to UpdateFirmware by status, and `unanswered`.
        self.answers: Counter[str] = Counter()
        #: Per station that accepted the update, the statuses it reported for it, in order.
        self.statuses: dict[str, list[str]] = {}

    def picks(self, station_id: str) -> bool:
        """Whether this station is one of the share that gets the update."""
        return zlib.crc32(station_id.encode()) < self._share_below

    def response_overrides(self) -> dict[str, ResponseOverride]:
        """The answers that follow the updates: add them to `CsmsConfig.response_overrides`."""
        return {"FirmwareStatusNotification": self._record}

    def request(self, now_epoch_s: float) -> dict[str, Any]:
        """The UpdateFirmware request sent at `now_epoch_s`."""
        firmware: dict[str, Any] = {
            "location": self.location,
            "retrieveDateTime": format_timestamp(now_epoch_s),
        }
        if self._install_after_s is not None:
            firmware["installDateTime"] = format_timestamp(now_epoch_s + self._install_after_s)
        if self._signed:
            firmware["signingCertificate"] = _PLACEHOLDER_CERTIFICATE
            firmware["signature"] = _PLACEHOLDER_SIGNATURE
        payload: dict[str, Any] = {"requestId": self.request_id, "firmware": firmware}
        if self._retries is not None:
            payload["retries"] = self._retries
        if self._retry_interval_s is not None:
            payload["retryInterval"] = self._retry_interval_s
        return payload

    async def roll_out(self, csms: Csms, now_epoch_s: float) -> None:
        """Send the update to every connected station the share picks; returns once each has
        answered (or failed to)."""
        payload = self.request(now_epoch_s)
        targets = [
            station_id
            for station_id in csms.stations
            if csms.is_connected(station_id) and self.picks(station_id)
        ]
        limiter = trio.CapacityLimiter(self._max_parallel)

        async def update(station_id: str) -> None:
            async with limiter:
                # Listening before asking: the first status may come right after the answer.
                self.statuses.setdefault(station_id, [])
                answer = await csms.call_quietly(station_id, "UpdateFirmware", payload)
            status = "unanswered" if answer is None else str(answer["status"])
            self.answers[status] += 1
            if status not in ("Accepted", "AcceptedCanceled"):
                self.statuses.pop(station_id, None)

        async with trio.open_nursery() as nursery:
            for station_id in targets:
                nursery.start_soon(update, station_id)

    def outcomes(self) -> Counter[str]:
        """How the updates stand: each station's last status (`none yet` before the first)."""
        return Counter(
            sequence[-1] if sequence else "none yet" for sequence in self.statuses.values()
        )

    def summary(self) -> dict[str, Any]:
        """The rollout in the run's summary: answers, and outcomes by status."""
        return {
            "request_id": self.request_id,
            "answers": dict(sorted(self.answers.items())),
            "outcomes": dict(sorted(self.outcomes().items())),
        }

    def _record(self, station_id: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """Note the status, answer as any CSMS does (FirmwareStatusNotificationResponse is
        empty)."""
        if request.get("requestId") == self.request_id:
            sequence = self.statuses.get(station_id)
            if sequence is not None:
                sequence.append(str(request["status"]))
        return _EMPTY
