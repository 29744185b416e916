"""SAM's own transform of template.yaml (Globals merged, events expanded into plain CloudFormation), offline."""
from __future__ import annotations

import copy
import functools
import json

import boto3
from samtranslator.metrics.metrics import Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

LOCAL_CODE_BUCKET = "local-code"  # s3://local-code/<folder>: a local CodeUri carried through SAM's transform


@functools.lru_cache(maxsize=32)
def _sam_transform(text: str, overrides_json: str, region: str) -> dict:
    template = with_local_code_uris(yaml_parse(text))
    parameters = {**json.loads(overrides_json), "AWS::Region": region}
    metrics = Metrics()  # SAM's usage metrics, dropped (the dummy publisher) once translated
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region), metrics=metrics)
    transformed = translator.translate(template, parameter_values=parameters, get_managed_policy_map=lambda: {})
    metrics.publish()
    return transformed


def sam_transform(text: str, overrides_json: str, region: str) -> dict:
    """SAM's own transform of the template (as CloudFormation would run it), local code folders kept as S3 keys."""
    return copy.deepcopy(_sam_transform(text, overrides_json, region))


def with_local_code_uris(template: dict) -> dict:
    """A local CodeUri/ContentUri folder as the S3 object SAM's transform expects; its key is the folder."""
    for resource in (template.get("Resources") or {}).values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{LOCAL_CODE_BUCKET}/{props[key]}"
    return template
