"""template.yaml parsed and SAM-translated once per test session, for the test_template* modules."""
from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


class NoManagedPolicies(ManagedPolicyLoader):
    """The translator asks IAM for AWS managed policy ARNs only when a function names one; ours name none."""

    def __init__(self) -> None:  # no IAM client: offline
        pass

    def load(self) -> dict[str, str]:
        return {}


@functools.lru_cache(maxsize=1)
def raw_template() -> dict:
    return yaml_parse(TEMPLATE.read_text())


def raw() -> dict:
    return copy.deepcopy(raw_template())


def with_s3_code_uris(template: dict) -> dict:
    """What `sam package` hands CloudFormation: local CodeUri/ContentUri folders become S3 objects."""
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://cxr-artifacts/{props[key].strip('/')}.zip"
    return template


@functools.lru_cache(maxsize=1)
def translated_template() -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator fills AWS::Region from boto
    return transform(with_s3_code_uris(raw()), {}, NoManagedPolicies())


def translated() -> dict:
    return copy.deepcopy(translated_template())


def resources_of_type(template: dict, kind: str) -> dict[str, dict]:
    return {name: spec for name, spec in template["Resources"].items() if spec["Type"] == kind}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allow_statements(policy_document: dict) -> list[dict]:
    return [s for s in as_list(policy_document["Statement"]) if s.get("Effect") == "Allow"]


def role_statements(template: dict, role_id: str) -> list[dict]:
    """Every Allow statement a role carries: its inline policies and the template's managed policies it attaches."""
    props = template["Resources"][role_id]["Properties"]
    statements = [s for policy in props.get("Policies", []) for s in allow_statements(policy["PolicyDocument"])]
    for arn in props.get("ManagedPolicyArns", []):
        managed = template["Resources"][arn["Ref"]]
        statements += allow_statements(managed["Properties"]["PolicyDocument"])
    return statements


def role_actions(template: dict, role_id: str) -> set[str]:
    return {action for s in role_statements(template, role_id) for action in as_list(s["Action"])}
