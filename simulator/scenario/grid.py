"""The `grid` section: the grid's frequency, and scripted frequency and voltage excursions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .base import MODEL_CONFIG

__all__ = ["DerEventSpec", "FrequencyEventSpec", "GridSettings"]


class FrequencyEventSpec(BaseModel):
    """A scripted grid frequency excursion."""

    model_config = MODEL_CONFIG

    at_s: float = Field(ge=0, description="Simulated seconds after the start when it begins.")
    duration_s: float = Field(gt=0, description="How long the frequency stays there, seconds.")
    frequency_hz: float = Field(gt=40, lt=70, description="The frequency during the event.")
    ramp_s: float = Field(default=0.0, ge=0, description="Seconds to ramp in and out.")


class DerEventSpec(BaseModel):
    """A scripted voltage or frequency excursion that stations report as a DER alarm."""

    model_config = MODEL_CONFIG

    at_s: float = Field(ge=0, description="Simulated seconds after the start when it begins.")
    duration_s: float = Field(gt=0, description="How long it lasts, seconds.")
    kind: Literal["UnderFrequency", "OverFrequency", "UnderVoltage", "OverVoltage"] = Field(
        description="What the grid does."
    )
    value: float = Field(gt=0, description="The frequency (Hz) or voltage (V) during the event.")


class GridSettings(BaseModel):
    """The grid the stations hang on: its frequency, and scripted events."""

    model_config = MODEL_CONFIG

    nominal_hz: Literal[50, 60] = Field(default=50, description="Nominal grid frequency.")
    sigma_hz: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Standard deviation of the frequency's random deviation; null uses the published "
            "figure for the nominal frequency's grids; 0 keeps the frequency at nominal."
        ),
    )
    time_constant_s: float | None = Field(
        default=None, gt=0, description="How fast a deviation fades, seconds; null: published."
    )
    sample_interval_s: float = Field(
        default=1.0, gt=0, description="How often the frequency is sampled, simulated seconds."
    )
    events: tuple[FrequencyEventSpec, ...] = Field(
        default=(), description="Scripted frequency excursions."
    )
    der_events: tuple[DerEventSpec, ...] = Field(
        default=(), description="Voltage and frequency excursions the stations report."
    )
