"""The JSON Schema of the scenario format, built from the models' field descriptions."""

from __future__ import annotations

from typing import Any

from .root import Scenario

__all__ = ["scenario_json_schema"]


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, for editors (`fleetsim schema`)."""
    schema = Scenario.model_json_schema()
    schema["title"] = "fleetsim scenario"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
