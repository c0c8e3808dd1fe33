"""The `embedded_csms` section: what fleetsim's own CSMS does beyond answering everything
Accepted (smart charging, V2X profiles, deauthorizing some transactions)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .base import MODEL_CONFIG

__all__ = ["EmbeddedCsmsSettings"]


class EmbeddedCsmsSettings(BaseModel):
    """What the embedded CSMS does beyond answering (it is ignored with an external CSMS)."""

    model_config = MODEL_CONFIG

    tx_limit_w: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Send a TxProfile with this limit (W) right after each transaction starts, as a "
            "CSMS doing smart charging would."
        ),
    )
    v2x_operation_mode: Literal["CentralSetpoint", "LocalFrequency"] | None = Field(
        default=None,
        description=(
            "When a bidirectional EV reports its charging needs, send a TxProfile with this V2X "
            "operation mode."
        ),
    )
    v2x_setpoint_w: float = Field(
        default=-7_000.0,
        description="The setpoint of a CentralSetpoint profile, W; negative discharges.",
    )
    v2x_max_power_w: float = Field(
        default=11_000.0,
        gt=0,
        description="Full response of a LocalFrequency profile's frequency-watt curve, W.",
    )
    deauthorize_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of transactions whose IdToken the CSMS answers Invalid in TransactionEvent, "
            "as a back office that blocked the card would; the station then ends them "
            "(DeAuthorized) or stops their energy, per TxCtrlr.StopTxOnInvalidId."
        ),
    )
