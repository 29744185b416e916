"""What template.yaml declares, resolved for one stack: tables, queues, buckets, HTTP routes, function settings."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cfn_yaml import load_template
from .intrinsics import Resolver, StackIdentity, TemplateError

LOCAL_PARAMETER_DEFAULTS = {"Stage": "local"}
FUNCTION_TYPES = ("AWS::Serverless::Function",)
QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue", "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId", "MaximumMessageSize", "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds", "RedriveAllowPolicy", "RedrivePolicy", "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # template path, e.g. /v1/jobs/{id}
    function: str  # logical id

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


class StackTemplate:
    """template.yaml read once and resolved for one parameter set and stack identity."""

    def __init__(self, template_path: str | Path, params: dict[str, Any] | None = None,
                 identity: StackIdentity | None = None) -> None:
        self.path = Path(template_path).resolve()
        self.root = self.path.parent
        declared = load_template(self.path)
        overrides = {k: v for k, v in LOCAL_PARAMETER_DEFAULTS.items() if k in (declared.get("Parameters") or {})}
        overrides.update(params or {})
        self.resolver = Resolver(declared, overrides, identity or StackIdentity())
        self.raw = declared

    @property
    def parameters(self) -> dict[str, Any]:
        return self.resolver.parameters

    def logical_ids(self, kind: str) -> list[str]:
        return [logical_id for logical_id, spec in self.resolver.resources.items()
                if spec.get("Type") == kind and self.resolver.resource_enabled(logical_id)]

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resolver.resolve(self.resolver.resources[logical_id].get("Properties") or {})

    # ---- data resources ------------------------------------------------------------------
    def tables(self) -> dict[str, dict]:
        tables = {}
        for logical_id in self.logical_ids("AWS::DynamoDB::Table"):
            props = self.properties(logical_id)
            ttl = props.get("TimeToLiveSpecification") or {}
            tables[self.resolver.ref(logical_id)] = {
                "logical_id": logical_id,
                "key_schema": props["KeySchema"],
                "attribute_definitions": props["AttributeDefinitions"],
                "billing_mode": props.get("BillingMode", "PROVISIONED"),
                "global_secondary_indexes": {index["IndexName"]: index["KeySchema"]
                                             for index in props.get("GlobalSecondaryIndexes", [])},
                "ttl_attribute": ttl.get("AttributeName") if _truthy(ttl.get("Enabled")) else None,
                "properties": props,
            }
        return tables

    def queues(self) -> dict[str, dict]:
        queues = {}
        for logical_id in self.logical_ids("AWS::SQS::Queue"):
            props = self.properties(logical_id)
            attributes = {key: _attribute_text(props[key]) for key in QUEUE_ATTRIBUTES if key in props}
            redrive = props.get("RedrivePolicy")
            if isinstance(redrive, str):
                redrive = json.loads(redrive)
            queues[self.resolver.queue_name(logical_id)] = {
                "logical_id": logical_id,
                "url": self.resolver.ref(logical_id),
                "arn": self.resolver.get_att(logical_id, "Arn"),
                "attributes": attributes,
                "redrive": {"dead_letter_queue": redrive["deadLetterTargetArn"].rsplit(":", 1)[-1],
                            "max_receive_count": int(redrive["maxReceiveCount"])} if redrive else None,
                "depends_on": self.dependencies(logical_id),
            }
        return queues

    def buckets(self) -> dict[str, dict]:
        buckets = {}
        for logical_id in self.logical_ids("AWS::S3::Bucket"):
            props = self.properties(logical_id)
            buckets[self.resolver.ref(logical_id)] = {"logical_id": logical_id, "properties": props}
        return buckets

    def topics(self) -> dict[str, dict]:
        """SNS topics by ARN (a Ref of a topic is its ARN)."""
        return {self.resolver.ref(logical_id): {"logical_id": logical_id, "properties": self.properties(logical_id)}
                for logical_id in self.logical_ids("AWS::SNS::Topic")}

    def dependencies(self, logical_id: str) -> list[str]:
        """Other resources this one names through Ref, GetAtt, Sub or DependsOn."""
        spec = self.resolver.resources[logical_id]
        found = set(_referenced_names(spec.get("Properties") or {}, set(self.resolver.resources)))
        depends_on = spec.get("DependsOn") or []
        found.update([depends_on] if isinstance(depends_on, str) else depends_on)
        found.discard(logical_id)
        return sorted(found)

    # ---- functions and routes ------------------------------------------------------------
    def function(self, logical_id: str) -> FunctionSpec:
        globals_ = (self.raw.get("Globals") or {}).get("Function") or {}
        own = self.resolver.resources[logical_id].get("Properties") or {}
        merged_env = dict(((globals_.get("Environment") or {}).get("Variables")) or {})
        merged_env.update(((own.get("Environment") or {}).get("Variables")) or {})
        props = {**globals_, **own}
        environment = {key: _attribute_text(value) for key, value in self.resolver.resolve(merged_env).items()}
        return FunctionSpec(
            logical_id=logical_id,
            name=str(self.resolver.ref(logical_id)),
            code_dir=(self.root / str(self.resolver.resolve(props["CodeUri"]))).resolve(),
            handler=str(self.resolver.resolve(props["Handler"])),
            memory_mb=int(self.resolver.resolve(props.get("MemorySize", 128))),
            timeout_s=int(self.resolver.resolve(props.get("Timeout", 3))),
            environment=environment,
        )

    def function_layers(self, logical_id: str) -> dict[str, str]:
        """The layers a function declares (Globals first, as SAM merges them): logical id -> ContentUri."""
        globals_ = (self.raw.get("Globals") or {}).get("Function") or {}
        own = self.resolver.resources[logical_id].get("Properties") or {}
        layers = {}
        for ref in [*(globals_.get("Layers") or []), *(own.get("Layers") or [])]:
            layer_id = ref.get("Ref") if isinstance(ref, dict) else None
            spec = self.resolver.resources.get(layer_id or "") or {}
            if spec.get("Type") in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
                props = spec.get("Properties") or {}
                layers[layer_id] = str(self.resolver.resolve(props.get("ContentUri") or props.get("Content")))
        return layers

    def functions(self) -> dict[str, FunctionSpec]:
        return {logical_id: self.function(logical_id)
                for kind in FUNCTION_TYPES for logical_id in self.logical_ids(kind)}

    def http_api_cors(self) -> dict | None:
        """The HttpApi's CorsConfiguration as deployed (None when the template's condition leaves it out)."""
        for logical_id in self.logical_ids("AWS::Serverless::HttpApi"):
            config = self.resolver.resolve(
                (self.resolver.resources[logical_id].get("Properties") or {}).get("CorsConfiguration"))
            return config if isinstance(config, dict) else None  # AWS::NoValue comes back as a marker object
        return None

    def http_routes(self) -> list[Route]:
        routes = []
        for kind in FUNCTION_TYPES:
            for logical_id in self.logical_ids(kind):
                events = (self.resolver.resources[logical_id].get("Properties") or {}).get("Events") or {}
                for event in events.values():
                    if event.get("Type") != "HttpApi":
                        continue
                    props = self.resolver.resolve(event.get("Properties") or {})
                    method = str(props.get("Method", "ANY")).upper()
                    routes.append(Route(method="ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method,
                                        path=str(props.get("Path", "$default")), function=logical_id))
        return routes


def declared_resources(template_path: str | Path, params: dict[str, Any] | None = None,
                       identity: StackIdentity | None = None) -> dict[str, dict]:
    """The tables, queues and buckets template.yaml declares, keyed by physical name, with schemas/TTL/redrive."""
    template = StackTemplate(template_path, params, identity)
    return {"tables": template.tables(), "queues": template.queues(), "buckets": template.buckets()}


def _referenced_names(value: Any, names: set[str]) -> list[str]:
    found: list[str] = []
    if isinstance(value, list):
        for item in value:
            found += _referenced_names(item, names)
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
                found += [token.split(".", 1)[0] for token in _sub_tokens(text) if token.split(".", 1)[0] in names]
                if not isinstance(item, str):
                    found += _referenced_names(item[1], names)
            else:
                found += _referenced_names(item, names)
    return found


def _sub_tokens(text: str) -> list[str]:
    from .intrinsics import _SUB_VARIABLE
    return _SUB_VARIABLE.findall(text)


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _attribute_text(value: Any) -> str:
    """CloudFormation hands every attribute/environment value over as a string (booleans lower case, maps as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


__all__ = ["StackTemplate", "FunctionSpec", "Route", "declared_resources", "TemplateError", "StackIdentity"]
