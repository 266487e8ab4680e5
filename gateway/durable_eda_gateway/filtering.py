"""Declarative rules that decide which payloads are forwarded and which keys they keep.

Rules are JSON (a file or an environment variable), validated once at start-up:

    {
      "forward_if": {"any": [{"field": "status", "in": ["failed", "error"]},
                              {"field": "severity", "equals": "critical"}]},
      "keep": ["status", "severity", "host", "alert.name"],
      "drop": ["alert.token"]
    }

A condition is {"field": PATH, "equals": V}, {"field": PATH, "in": [V, ...]},
{"field": PATH, "exists": BOOL}, {"all": [C, ...]}, {"any": [C, ...]} or {"not": C}.
PATH is dotted into nested objects; the field "@event_type" is the request's event type.
Without "forward_if" every payload is forwarded. "keep" (if given) keeps only the listed
paths; "drop" then removes paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENT_TYPE_FIELD = "@event_type"
_MISSING = object()


class RulesError(ValueError):
    """The rules are not valid; the message says where."""


@dataclass(frozen=True)
class FieldCondition:
    path: tuple[str, ...]
    operator: str
    operand: Any

    def holds(self, payload: Mapping[str, Any], event_type: str | None) -> bool:
        value = event_type if self.path == (EVENT_TYPE_FIELD,) else lookup(payload, self.path)
        if self.operator == "exists":
            return (value is not _MISSING and value is not None) == bool(self.operand)
        if value is _MISSING:
            return False
        if self.operator == "equals":
            return json_equal(value, self.operand)
        return any(json_equal(value, candidate) for candidate in self.operand)


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]

    def holds(self, payload: Mapping[str, Any], event_type: str | None) -> bool:
        return all(c.holds(payload, event_type) for c in self.conditions)


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]

    def holds(self, payload: Mapping[str, Any], event_type: str | None) -> bool:
        return any(c.holds(payload, event_type) for c in self.conditions)


@dataclass(frozen=True)
class Not:
    condition: Condition

    def holds(self, payload: Mapping[str, Any], event_type: str | None) -> bool:
        return not self.condition.holds(payload, event_type)


Condition = FieldCondition | AllOf | AnyOf | Not


@dataclass(frozen=True)
class FilterRules:
    forward_if: Condition | None = None
    keep: tuple[tuple[str, ...], ...] | None = None
    drop: tuple[tuple[str, ...], ...] = ()

    def apply(self, payload: dict[str, Any], event_type: str | None) -> dict[str, Any] | None:
        """The payload to forward, or None when the rules say not to forward it."""
        if self.forward_if is not None and not self.forward_if.holds(payload, event_type):
            return None
        kept = payload if self.keep is None else _keep_paths(payload, self.keep)
        return _drop_paths(kept, self.drop)


def lookup(payload: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted path, or _MISSING."""
    value: Any = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def json_equal(left: Any, right: Any) -> bool:
    # Python treats True == 1; JSON does not, and a rule for `true` must not match `1`.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    return bool(left == right)


def parse_rules(raw: object) -> FilterRules:
    if not isinstance(raw, dict):
        raise RulesError("filter rules must be a JSON object")
    unknown = set(raw) - {"forward_if", "keep", "drop"}
    if unknown:
        raise RulesError(f"unknown filter rule keys: {sorted(unknown)}")
    forward_if = (
        None if "forward_if" not in raw else _parse_condition(raw["forward_if"], "forward_if")
    )
    keep = None if "keep" not in raw else _parse_paths(raw["keep"], "keep")
    return FilterRules(
        forward_if=forward_if, keep=keep, drop=_parse_paths(raw.get("drop", []), "drop")
    )


def _parse_condition(raw: object, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: a condition must be a JSON object")
    if "field" in raw:
        return _parse_field_condition(raw, where)
    if len(raw) != 1:
        raise RulesError(f"{where}: expected one of field/all/any/not, got {sorted(raw)}")
    ((kind, body),) = raw.items()
    if kind == "not":
        return Not(_parse_condition(body, f"{where}.not"))
    if kind in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise RulesError(f"{where}.{kind}: must be a non-empty list of conditions")
        parsed = tuple(_parse_condition(c, f"{where}.{kind}[{i}]") for i, c in enumerate(body))
        return AllOf(parsed) if kind == "all" else AnyOf(parsed)
    raise RulesError(f"{where}: unknown condition {kind!r}")


def _parse_field_condition(raw: dict[str, Any], where: str) -> FieldCondition:
    operators = set(raw) - {"field"}
    if len(operators) != 1 or not operators <= {"equals", "in", "exists"}:
        raise RulesError(f"{where}: a field condition takes exactly one of equals/in/exists")
    operator = operators.pop()
    operand = raw[operator]
    if operator == "in" and not isinstance(operand, list):
        raise RulesError(f"{where}: 'in' takes a list")
    if operator == "exists" and not isinstance(operand, bool):
        raise RulesError(f"{where}: 'exists' takes true or false")
    return FieldCondition(_parse_path(raw["field"], where), operator, operand)


def _parse_paths(raw: object, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list):
        raise RulesError(f"{where}: must be a list of dotted paths")
    return tuple(_parse_path(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _parse_path(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, str) or not raw or any(not part for part in raw.split(".")):
        raise RulesError(f"{where}: a field path is a non-empty dotted string")
    return tuple(raw.split("."))


def _keep_paths(payload: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for path in paths:
        value = lookup(payload, path)
        if value is _MISSING:
            continue
        target = kept
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    return kept


def _drop_paths(payload: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    if not paths:
        return payload
    result = _copy_objects(payload)
    for path in paths:
        parent = lookup(result, path[:-1])
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return result


def _copy_objects(value: dict[str, Any]) -> dict[str, Any]:
    # Only nested objects are copied, so dropping never changes the caller's payload.
    return {k: _copy_objects(v) if isinstance(v, dict) else v for k, v in value.items()}
