"""Closed intervals that sessions draw values from: dwell times, states of charge."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from .base import MODEL_CONFIG, invalid_fields

__all__ = ["Range", "SocRange"]


class Range(BaseModel):
    """A closed interval; the session model draws values uniformly from it."""

    model_config = MODEL_CONFIG

    min: float = Field(gt=0, description="Smallest value drawn.")
    max: float = Field(gt=0, description="Largest value drawn; at least `min`.")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min > self.max:
            raise invalid_fields(
                [(("max",), f"max ({self.max:g}) is below min ({self.min:g}); swap them", self.max)]
            )
        return self


class SocRange(Range):
    """A closed interval of state of charge, as a fraction of the battery (0..1)."""

    min: float = Field(gt=0, le=1, description="Smallest state of charge drawn (0..1).")
    max: float = Field(
        gt=0, le=1, description="Largest state of charge drawn (0..1); at least min."
    )
