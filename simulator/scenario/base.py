"""What every model of the scenario shares: the model config, and how validators report problems.

Every model forbids unknown keys (a misspelt optional key would otherwise be ignored silently)
and is frozen, because the fleet shares one scenario across all stations.  A validator raises
`invalid(...)` for a problem with the value it checks, or `invalid_fields(...)` when it checks
several fields together, so that each error points at the field to change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["Loc", "MODEL_CONFIG", "invalid", "invalid_fields"]

MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

#: A location inside a scenario, as pydantic reports it: ("stations", "evses", 1, "phases").
Loc = tuple[str | int, ...]


def invalid(message: str) -> PydanticCustomError:
    """An error whose text is `message` as written (braces included, no "Value error," prefix)."""
    return PydanticCustomError("invalid_scenario", "{reason}", {"reason": message})


def invalid_fields(problems: Iterable[tuple[Loc, str, Any]]) -> ValidationError:
    """Errors at locations inside the model being validated, as (loc, message, input).

    A model validator that checks several fields together raises this so that each error
    points at the field to change, not at the whole section.
    """
    return ValidationError.from_exception_data(
        "Scenario",
        [
            InitErrorDetails(type=invalid(message), loc=loc, input=value)
            for loc, message, value in problems
        ],
    )
