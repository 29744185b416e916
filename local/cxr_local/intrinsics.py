"""Resolves CloudFormation intrinsic functions, parameters and pseudo parameters of one template to concrete values."""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

NO_VALUE = object()  # AWS::NoValue: the enclosing key or list item disappears
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class TemplateError(ValueError):
    """The template uses something this resolver cannot give a value to, or a parameter is invalid."""


@dataclass
class StackIdentity:
    stack_name: str = "cxr-local"
    region: str = "us-east-1"
    account_id: str = "123456789012"  # moto's default account
    url_suffix: str = "amazonaws.com"
    partition: str = "aws"
    queue_url_base: str | None = None  # e.g. the moto endpoint; None: the public SQS endpoint

    def pseudo_parameters(self) -> dict[str, Any]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::Partition": self.partition,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }


@dataclass
class Resolver:
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

    # ---- physical ids and attributes -----------------------------------------------------
    def _generated_name(self, logical_id: str, max_len: int = 64) -> str:
        digest = hashlib.sha256(f"{self.identity.stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
        return f"{self.identity.stack_name}-{logical_id}-{digest}"[:max_len]

    def _name_property(self, logical_id: str, prop: str, max_len: int = 64) -> str:
        props = self.resources[logical_id].get("Properties") or {}
        if prop in props:
            return str(self.resolve(props[prop]))
        return self._generated_name(logical_id, max_len)

    def queue_name(self, logical_id: str) -> str:
        name = self._name_property(logical_id, "QueueName", 80)
        fifo = str(self.resolve((self.resources[logical_id].get("Properties") or {}).get("FifoQueue", False))).lower()
        return f"{name}.fifo" if fifo == "true" and not name.endswith(".fifo") else name

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        pseudo = self.identity.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        if name not in self.resources:
            raise TemplateError(f"!Ref to unknown name {name}")
        kind = self.resources[name].get("Type", "")
        ident = self.identity
        if kind == "AWS::DynamoDB::Table":
            return self._name_property(name, "TableName", 255)
        if kind == "AWS::SQS::Queue":
            base = ident.queue_url_base or f"https://sqs.{ident.region}.{ident.url_suffix}"
            return f"{base.rstrip('/')}/{ident.account_id}/{self.queue_name(name)}"
        if kind == "AWS::S3::Bucket":
            return self._name_property(name, "BucketName", 63).lower()
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            layer = self._name_property(name, "LayerName")
            return f"arn:{ident.partition}:lambda:{ident.region}:{ident.account_id}:layer:{layer}:1"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return self._name_property(name, "FunctionName")
        if kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api", "AWS::Serverless::Api"):
            return hashlib.sha256(f"{ident.stack_name}/{name}".encode()).hexdigest()[:10]
        return self._generated_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise TemplateError(f"!GetAtt of unknown resource {logical_id}")
        kind = self.resources[logical_id].get("Type", "")
        ident = self.identity
        arn_prefix = f"arn:{ident.partition}"
        if kind == "AWS::SQS::Queue":
            name = self.queue_name(logical_id)
            values = {"Arn": f"{arn_prefix}:sqs:{ident.region}:{ident.account_id}:{name}",
                      "QueueName": name, "QueueUrl": self.ref(logical_id)}
        elif kind == "AWS::DynamoDB::Table":
            table_arn = f"{arn_prefix}:dynamodb:{ident.region}:{ident.account_id}:table/{self.ref(logical_id)}"
            values = {"Arn": table_arn, "StreamArn": f"{table_arn}/stream/local"}
        elif kind == "AWS::S3::Bucket":
            bucket = self.ref(logical_id)
            values = {"Arn": f"{arn_prefix}:s3:::{bucket}", "DomainName": f"{bucket}.s3.{ident.url_suffix}",
                      "RegionalDomainName": f"{bucket}.s3.{ident.region}.{ident.url_suffix}"}
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            values = {"Arn": f"{arn_prefix}:lambda:{ident.region}:{ident.account_id}:function:{self.ref(logical_id)}"}
        else:
            service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "unknown"
            values = {"Arn": f"{arn_prefix}:{service}:{ident.region}:{ident.account_id}:{self.ref(logical_id)}"}
        if attribute not in values:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not supported for {kind}")
        return values[attribute]

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
