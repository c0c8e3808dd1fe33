"""The `thresholds` list: what the run must achieve for its exit code to be 0.

Each item is a threshold expression (`simulator/thresholds.py` has the grammar), or a mapping
that adds k6's abortOnFail: stop the run as soon as the threshold fails on the live figures,
after a grace period.  Expressions are parsed here, so `fleetsim validate` catches a typo with
its file, line and a caret under the character at fault.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, WithJsonSchema, field_validator, model_validator

from ..thresholds import Threshold, ThresholdSyntaxError, parse_threshold
from .base import MODEL_CONFIG, invalid, invalid_fields

__all__ = ["ThresholdItem", "ThresholdSpec", "check_expression"]


def check_expression(text: str) -> str:
    """`text` if it parses as a threshold; else a scenario error that points at the fault."""
    try:
        parse_threshold(text)
    except ThresholdSyntaxError as exc:
        raise invalid(exc.explain()) from None
    return text


class ThresholdSpec(BaseModel):
    """A threshold with k6's abortOnFail and its grace period; a plain string is read as
    `{expr: string}`."""

    model_config = MODEL_CONFIG

    expr: str = Field(
        description=(
            "The threshold: metric, optional label filter, comparison, number "
            "(p99_ms{action=BootNotification} < 500)."
        ),
    )
    abort_on_fail: bool = Field(
        default=False,
        description=(
            "Stop the run as soon as the threshold fails on the live figures (checked once a "
            "second); the run then exits 1."
        ),
    )
    delay_abort_eval_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Seconds of the run (wall seconds; trio seconds with --fast) before abort_on_fail "
            "is first checked, so a ramp-up does not stop the run."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _string_is_an_expression(cls, data: Any) -> Any:
        return {"expr": data} if isinstance(data, str) else data

    _expression_parses = field_validator("expr")(check_expression)

    @model_validator(mode="after")
    def _delay_needs_abort(self) -> Self:
        if self.delay_abort_eval_s and not self.abort_on_fail:
            raise invalid_fields(
                [
                    (
                        ("delay_abort_eval_s",),
                        "delay_abort_eval_s only delays abort_on_fail; add abort_on_fail: true "
                        "or remove delay_abort_eval_s",
                        self.delay_abort_eval_s,
                    )
                ]
            )
        return self

    def threshold(self) -> Threshold:
        """The parsed threshold."""
        return parse_threshold(
            self.expr,
            abort_on_fail=self.abort_on_fail,
            delay_abort_eval_s=self.delay_abort_eval_s,
        )


#: An item of `thresholds`: an expression, or a mapping with abort_on_fail (the JSON Schema
#: says both, for editors).
ThresholdItem = Annotated[
    ThresholdSpec,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "A threshold expression."},
                ThresholdSpec.model_json_schema(),
            ]
        }
    ),
]
