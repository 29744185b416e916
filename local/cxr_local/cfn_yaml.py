"""YAML loader for CloudFormation/SAM templates that understands the short intrinsic tags (!Ref, !Sub, ...)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_FUNCTION_TAGS = (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "If", "ImportValue",
    "Join", "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform",
)


class CfnLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation short tags, each turned into its long {"Fn::X": ...} form."""


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    return {"Ref": loader.construct_scalar(node)}


def _condition(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    return {"Condition": loader.construct_scalar(node)}


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    value = _construct_any(loader, node)
    if isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        value = [logical_id, attribute]
    return {"Fn::GetAtt": value}


def _function(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
        return {f"Fn::{name}": _construct_any(loader, node)}
    return construct


CfnLoader.add_constructor("!Ref", _ref)
CfnLoader.add_constructor("!Condition", _condition)
CfnLoader.add_constructor("!GetAtt", _get_att)
for _name in _FUNCTION_TAGS:
    CfnLoader.add_constructor(f"!{_name}", _function(_name))


def load_template(path: str | Path) -> dict:
    """Parse a CloudFormation/SAM YAML (or JSON) template file into plain Python data."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
