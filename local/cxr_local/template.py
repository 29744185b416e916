"""What template.yaml declares, after SAM's own transform, resolved for one stack: tables, queues, buckets, routes,
function settings."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from .intrinsics import Resolver, StackIdentity, TemplateError, referenced_names
from .sam import sam_transform

LOCAL_PARAMETER_DEFAULTS = {"Stage": "local"}
LAYER_TYPES = ("AWS::Lambda::LayerVersion",)
_FUNCTION_ARN = re.compile(r"\$\{([A-Za-z0-9]+)\.Arn\}")
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
    """template.yaml read once, transformed by SAM (Globals merged, events expanded) and resolved for one stack."""

    def __init__(self, template_path: str | Path, params: dict[str, Any] | None = None,
                 identity: StackIdentity | None = None) -> None:
        self.path = Path(template_path).resolve()
        self.root = self.path.parent
        identity = identity or StackIdentity()
        text = self.path.read_text(encoding="utf-8")
        self.raw = yaml_parse(text)
        overrides = {k: v for k, v in LOCAL_PARAMETER_DEFAULTS.items() if k in (self.raw.get("Parameters") or {})}
        overrides.update(params or {})
        self.transformed = sam_transform(text, json.dumps(overrides, sort_keys=True), identity.region)
        self.resolver = Resolver(self.transformed, overrides, identity)

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
        found = set(referenced_names(spec.get("Properties") or {}, set(self.resolver.resources)))
        depends_on = spec.get("DependsOn") or []
        found.update([depends_on] if isinstance(depends_on, str) else depends_on)
        found.discard(logical_id)
        return sorted(found)

    # ---- functions, their events and routes (as SAM's transform expanded them) --------------
    def function(self, logical_id: str) -> FunctionSpec:
        props = self.properties(logical_id)
        variables = (props.get("Environment") or {}).get("Variables") or {}
        return FunctionSpec(
            logical_id=logical_id,
            name=str(self.resolver.ref(logical_id)),
            code_dir=(self.root / props["Code"]["S3Key"]).resolve(),
            handler=str(props["Handler"]),
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            environment={key: _attribute_text(value) for key, value in variables.items()},
        )

    def function_layers(self, logical_id: str) -> dict[str, str]:
        """The layers a function declares (Globals first, as SAM merges them): template logical id -> ContentUri."""
        declared = [name for name, spec in self.raw["Resources"].items()
                    if spec.get("Type") in ("AWS::Serverless::LayerVersion", *LAYER_TYPES)]
        layers = {}
        for ref in (self.resolver.resources[logical_id].get("Properties") or {}).get("Layers") or []:
            layer_id = ref.get("Ref") if isinstance(ref, dict) else None
            spec = self.resolver.resources.get(layer_id or "") or {}
            if spec.get("Type") in LAYER_TYPES:  # SAM renames a layer <logical id><hash>; name it as template.yaml does
                name = max((name for name in declared if layer_id.startswith(name)), key=len, default=layer_id)
                layers[name] = str(self.resolver.resolve(spec["Properties"]["Content"]["S3Key"]))
        return layers

    def functions(self) -> dict[str, FunctionSpec]:
        return {logical_id: self.function(logical_id) for logical_id in self.logical_ids("AWS::Lambda::Function")}

    def event_source_mappings(self, function: str) -> list[dict]:
        """The function's SQS (and other stream) event source mappings, resolved."""
        return [self.properties(logical_id) for logical_id in self.logical_ids("AWS::Lambda::EventSourceMapping")
                if self.resolver.resources[logical_id]["Properties"].get("FunctionName") == {"Ref": function}]

    def schedule_rules(self, function: str) -> list[dict]:
        """The EventBridge rules that target the function, resolved."""
        target = {"Fn::GetAtt": [function, "Arn"]}
        return [self.properties(logical_id) for logical_id in self.logical_ids("AWS::Events::Rule")
                if any(t.get("Arn") == target for t in self.resolver.resources[logical_id]["Properties"]
                       .get("Targets") or [])]

    def _http_apis(self) -> list[dict]:
        return [self.resolver.resources[logical_id]["Properties"]
                for logical_id in self.logical_ids("AWS::ApiGatewayV2::Api")]

    def http_api_cors(self) -> dict | None:
        """The HttpApi's CORS configuration as deployed (None when the template's condition leaves it out)."""
        for props in self._http_apis():
            body = props.get("Body") or {}
            config = self.resolver.resolve(body.get("x-amazon-apigateway-cors", props.get("CorsConfiguration")))
            return _cors_configuration(config) if isinstance(config, dict) else None
        return None

    def http_routes(self) -> list[Route]:
        routes = []
        for props in self._http_apis():
            for path, operations in ((props.get("Body") or {}).get("paths") or {}).items():
                for method, operation in operations.items():
                    integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
                    uri = integration.get("uri") or {}
                    found = _FUNCTION_ARN.search(uri.get("Fn::Sub", "") if isinstance(uri, dict) else "")
                    if found:
                        method = method.upper()
                        routes.append(Route(method="ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method,
                                            path=path, function=found[1]))
        return routes


def declared_resources(template_path: str | Path, params: dict[str, Any] | None = None,
                       identity: StackIdentity | None = None) -> dict[str, dict]:
    """The tables, queues and buckets template.yaml declares, keyed by physical name, with schemas/TTL/redrive."""
    template = StackTemplate(template_path, params, identity)
    return {"tables": template.tables(), "queues": template.queues(), "buckets": template.buckets()}


def _cors_configuration(config: dict) -> dict:
    """The OpenAPI x-amazon-apigateway-cors keys (allowOrigins, ...) in the HttpApi's spelling (AllowOrigins, ...)."""
    return {key[:1].upper() + key[1:]: value for key, value in config.items()}


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
