"""Resolves CloudFormation intrinsic functions, parameters and pseudo parameters of one template to concrete values."""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .physical_ids import NO_VALUE, PhysicalIds, StackIdentity, TemplateError

__all__ = ["NO_VALUE", "Resolver", "StackIdentity", "TemplateError", "referenced_names"]
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass
class Resolver(PhysicalIds):
    """Gives every Ref/GetAtt/Sub/If/... of a parsed template its value for one stack identity and parameter set."""

    template: dict
    parameter_overrides: dict[str, Any] = field(default_factory=dict)
    identity: StackIdentity = field(default_factory=StackIdentity)

    def __post_init__(self) -> None:
        self.resources: dict[str, dict] = self.template.get("Resources") or {}
        self.parameters = self._resolve_parameters()
        self._conditions: dict[str, bool] = {}

    # ---- parameters and conditions -------------------------------------------------------
    def _resolve_parameters(self) -> dict[str, Any]:
        declared = self.template.get("Parameters") or {}
        unknown = set(self.parameter_overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameters: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in self.parameter_overrides:
                value = self.parameter_overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default and no value was given")
            value = _parameter_value(name, spec, value)
            values[name] = value
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # ---- Ref: parameters, pseudo parameters, then resources ------------------------------
    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        pseudo = self.identity.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        return self.resource_ref(name)

    # ---- intrinsic functions -------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Return value with every intrinsic function replaced by its result (AWS::NoValue entries removed)."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        items = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "If":
            condition, if_true, if_false = arg
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(self.resolve(logical_id), self.resolve(attribute))
        if name == "Sub":
            return self._sub(arg)
        arg = self.resolve(arg)
        if name == "Equals":
            return str(arg[0]) == str(arg[1])
        if name == "Not":
            return not arg[0]
        if name == "And":
            return all(arg)
        if name == "Or":
            return any(arg)
        if name == "Join":
            return str(arg[0]).join(str(item) for item in arg[1])
        if name == "Select":
            return arg[1][int(arg[0])]
        if name == "Split":
            return str(arg[1]).split(arg[0])
        if name == "Length":
            return len(arg)
        if name == "FindInMap":
            return self.template["Mappings"][arg[0]][arg[1]][arg[2]]
        if name == "Base64":
            return base64.b64encode(str(arg).encode()).decode()
        if name == "GetAZs":
            return [f"{self.identity.region}{zone}" for zone in "abc"]
        if name == "ToJsonString":
            return json.dumps(arg, separators=(",", ":"))
        raise TemplateError(f"Fn::{name} is not supported by the local resolver")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token and token.split(".", 1)[0] in self.resources:
                return str(self.get_att(*token.split(".", 1)))
            return str(self.ref(token))

        return _SUB_VARIABLE.sub(replace, text)


def _parameter_value(name: str, spec: dict, value: Any) -> Any:
    kind = spec.get("Type", "String")
    if kind == "Number":
        try:
            float(value)
        except (TypeError, ValueError):
            raise TemplateError(f"parameter {name}={value!r} is not a Number") from None
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        return [item.strip() for item in value.split(",")] if isinstance(value, str) else list(value)
    text = str(value)
    allowed = spec.get("AllowedValues")
    if allowed is not None and text not in [str(item) for item in allowed]:
        raise TemplateError(f"parameter {name}={text!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, text):
        raise TemplateError(f"parameter {name}={text!r} does not match {pattern}")
    return text


def referenced_names(value: Any, names: set[str]) -> list[str]:
    """The names among `names` that Ref, GetAtt or Sub inside `value` refer to."""
    found: list[str] = []
    if isinstance(value, list):
        for item in value:
            found += referenced_names(item, names)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str) and item in names:
                found.append(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".", 1)[0]
                if target in names:
                    found.append(target)
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                targets = [token.split(".", 1)[0] for token in _SUB_VARIABLE.findall(text)]
                found += [target for target in targets if target in names]
                if not isinstance(item, str):
                    found += referenced_names(item[1], names)
            else:
                found += referenced_names(item, names)
    return found
