"""Firmware in the scenario: how firmware transfers go on the stations (`stations.firmware`), and
the rollout the embedded CSMS runs (`embedded_csms.firmware_rollout`)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from .base import MODEL_CONFIG, invalid_fields

__all__ = ["FirmwareRolloutSettings", "FirmwareSettings"]

_SHARE_FIELDS = (
    "download_failure_share",
    "invalid_signature_share",
    "install_failure_share",
    "install_verification_failure_share",
)


def _share(what: str) -> float:
    return Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            f"Share (0..1) of {what}; drawn per station, request and attempt, so a rerun fails "
            "the same ones."
        ),
    )


class FirmwareSettings(BaseModel):
    """How long each step of a firmware update takes on the stations, in simulated seconds,
    and what share of them fails, so a CSMS can rehearse a rollout with failures (L01-L04).
    The firmware location is never fetched: the download is simulated."""

    model_config = MODEL_CONFIG

    download_s: float = Field(
        default=60.0, ge=0, description="Simulated seconds one download attempt takes."
    )
    verify_s: float = Field(
        default=5.0,
        ge=0,
        description="Simulated seconds checking a signed image's signature (or a checksum) takes.",
    )
    install_s: float = Field(
        default=120.0,
        ge=0,
        description="Simulated seconds installing takes, before the station reboots into it.",
    )
    download_failure_share: float = _share(
        "download attempts that fail (DownloadFailed; the update's retries try again)"
    )
    invalid_signature_share: float = _share(
        "signed images whose signature does not verify (InvalidSignature; for a Local "
        "Controller's publication, InvalidChecksum)"
    )
    install_failure_share: float = _share(
        "installations that fail (InstallationFailed; for a publication, PublishFailed)"
    )
    install_verification_failure_share: float = _share(
        "installations whose result does not verify (InstallVerificationFailed)"
    )
    local_controller: bool = Field(
        default=False,
        description=(
            "The stations are Local Controllers: they accept PublishFirmware and serve the "
            "image to the stations behind them (L03, L04). Other stations refuse it."
        ),
    )

    @model_validator(mode="after")
    def _failures_can_happen_together(self) -> Self:
        total = sum(getattr(self, name) for name in _SHARE_FIELDS)
        if total > 1.0:
            raise invalid_fields(
                (
                    (name,),
                    f"the failure shares add up to {total:g}; each update fails at most once, "
                    "so keep their sum at most 1",
                    getattr(self, name),
                )
                for name in _SHARE_FIELDS
                if getattr(self, name) > 0
            )
        return self


class FirmwareRolloutSettings(BaseModel):
    """A fleet-wide UpdateFirmware from the embedded CSMS at one moment of the run."""

    model_config = MODEL_CONFIG

    at_s: float = Field(
        ge=0,
        description=(
            "Simulated seconds after the run's start at which the CSMS sends UpdateFirmware to "
            "the connected stations it picks."
        ),
    )
    share: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description=(
            "Share (0..1] of the connected stations that get the update, picked by station id "
            "so a rerun picks the same ones."
        ),
    )
    location: str = Field(
        default="https://firmware.example.invalid/fleetsim-2.0.bin",
        min_length=1,
        max_length=512,
        description=(
            "The firmware's URL (never fetched); the stations report its file name without "
            "extension as their new firmwareVersion. At most 512 characters, which OCPP 2.0.1 "
            "allows."
        ),
    )
    request_id: int = Field(default=1, ge=0, description="The requestId of the UpdateFirmware.")
    signed: bool = Field(
        default=False,
        description=(
            "Send a signing certificate and a signature, so the stations verify the image "
            "(SignatureVerified or InvalidSignature)."
        ),
    )
    retries: int | None = Field(
        default=None, ge=0, description="How often a station retries a failed download."
    )
    retry_interval_s: int | None = Field(
        default=None, ge=0, description="Simulated seconds between download attempts."
    )
    install_after_s: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Ask the stations to install this many simulated seconds after at_s "
            "(installDateTime; InstallScheduled until then); null installs once downloaded."
        ),
    )
    max_parallel: int = Field(
        default=100,
        ge=1,
        description="UpdateFirmware requests the CSMS has under way at once.",
    )
