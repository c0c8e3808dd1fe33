"""The official OCPP JSON schemas, loaded from the installed `ocpp` package and compiled once.

This is the only module that reads schema files.  The schemas are not copied into fleetsim: they
are published under CC BY-ND and ship, unmodified, in the `ocpp` distribution on PyPI
(`ocpp/v21/schemas`, `ocpp/v201/schemas`).  Each action's schema is compiled by `jsonschema-rs`
the first time it is needed and kept for the life of the process, so validating a message costs
one call into compiled code (about 1 µs for a TransactionEvent with three sampled values).

A payload that fails is reported as the OCPP-J error code that names the kind of failure:

    a required field is missing, too many or too few items   OccurrenceConstraintViolation
    a value has the wrong JSON type                           TypeConstraintViolation
    a value is out of range, too long, not in the enum        PropertyConstraintViolation
    a field the schema does not know                          FormatViolation
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any, Callable, Literal, Mapping

import jsonschema_rs
import orjson

from .errors import ErrorCode, RpcError

__all__ = ["OCPP_VERSIONS", "OcppVersion", "SchemaSet", "schema_set", "subprotocol_for"]

OcppVersion = Literal["2.1", "2.0.1"]
OCPP_VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
_PACKAGE_FOLDER = {"2.1": "v21", "2.0.1": "v201"}
Kind = Literal["Request", "Response"]

_OCCURRENCE = {"Required", "MinItems", "MaxItems", "MinProperties", "MaxProperties"}
_TYPE = {"Type"}
_FORMAT = {"AdditionalProperties", "UnevaluatedProperties", "AdditionalItems", "FalseSchema"}


def subprotocol_for(version: OcppVersion) -> str:
    """The WebSocket subprotocol name of an OCPP version: `ocpp2.1`, `ocpp2.0.1`."""
    return f"ocpp{version}"


class SchemaSet:
    """The request and response schemas of one OCPP version."""

    def __init__(self, version: OcppVersion) -> None:
        if version not in _PACKAGE_FOLDER:
            raise ValueError(f"unknown OCPP version {version!r}; use one of {OCPP_VERSIONS}")
        self.version: OcppVersion = version
        self._folder = importlib.resources.files("ocpp") / _PACKAGE_FOLDER[version] / "schemas"
        names = [p.name for p in self._folder.iterdir() if p.name.endswith(".json")]
        if not names:
            raise RuntimeError(
                f"the installed ocpp package has no OCPP {version} schemas in {self._folder}; "
                "install ocpp>=2.1 (pip install -e . does)"
            )
        self._files = frozenset(names)
        self.actions: frozenset[str] = frozenset(
            name.removesuffix(".json").removesuffix("Request").removesuffix("Response")
            for name in names
        )
        self._validators: dict[tuple[str, str], Callable[[Any], bool]] = {}
        self._full: dict[tuple[str, str], Any] = {}

    def _file_name(self, action: str, kind: Kind) -> str | None:
        """The schema file of `action`'s request or response, or None when there is none.

        A SEND-only action (NotifyPeriodicEventStream) has a single schema file named after the
        action alone, with no Request/Response suffix; it is that action's request schema.
        """
        name = f"{action}{kind}.json"
        if name in self._files:
            return name
        if kind == "Request" and f"{action}.json" in self._files:
            return f"{action}.json"
        return None

    def has(self, action: str, kind: Kind) -> bool:
        return self._file_name(action, kind) is not None

    def schema(self, action: str, kind: Kind) -> dict[str, Any]:
        """The schema document itself, as the ocpp package ships it."""
        name = self._file_name(action, kind)
        if name is None:
            raise FileNotFoundError(f"OCPP {self.version} has no schema for {action}{kind}")
        text = (self._folder / name).read_bytes()
        result: dict[str, Any] = orjson.loads(text.removeprefix(b"\xef\xbb\xbf"))
        return result

    def _compiled(self, action: str, kind: Kind) -> Any:
        key = (action, kind)
        validator = self._full.get(key)
        if validator is None:
            validator = jsonschema_rs.validator_for(self.schema(action, kind))
            self._full[key] = validator
            self._validators[key] = validator.is_valid
        return validator

    def validate(self, action: str, kind: Kind, payload: Mapping[str, Any]) -> None:
        """Raise `RpcError` with the matching OCPP-J code when `payload` breaks the schema.

        An action without a schema of this version raises NotImplemented, the answer OCPP-J
        gives to an action the receiver does not know.
        """
        is_valid = self._validators.get((action, kind))
        if is_valid is None:
            if not self.has(action, kind):
                raise RpcError(
                    ErrorCode.NOT_IMPLEMENTED,
                    f"{action} is not an OCPP {self.version} action",
                )
            self._compiled(action, kind)
            is_valid = self._validators[(action, kind)]
        if is_valid(payload):
            return
        raise self._explain(action, kind, payload)

    def _explain(self, action: str, kind: Kind, payload: Mapping[str, Any]) -> RpcError:
        errors = list(self._compiled(action, kind).iter_errors(payload))
        first = errors[0]
        kind_name = type(first.kind).__name__
        if kind_name in _OCCURRENCE:
            code = ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
        elif kind_name in _TYPE:
            code = ErrorCode.TYPE_CONSTRAINT_VIOLATION
        elif kind_name in _FORMAT:
            code = ErrorCode.FORMAT_VIOLATION
        else:
            code = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
        where = "/".join(str(part) for part in first.instance_path) or "(payload)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return RpcError(code, f"{action}{kind} {where}: {first.message}{more}")


@functools.cache
def schema_set(version: OcppVersion) -> SchemaSet:
    """The process-wide `SchemaSet` of `version`; schemas compile once per process."""
    return SchemaSet(version)
