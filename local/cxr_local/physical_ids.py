"""Physical ids and attributes that CloudFormation would give a template's resources in one stack."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

NO_VALUE = object()  # AWS::NoValue: the enclosing key or list item disappears


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
            "AWS::StackId": (f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}"
                             f":stack/{self.stack_name}/local"),
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }


class PhysicalIds:
    """Names, URLs and ARNs of resources (mixed into the Resolver, whose resolve() evaluates their name properties)."""

    resources: dict[str, dict]
    identity: StackIdentity
    resolve: Any  # the Resolver's intrinsic-function evaluation

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

    def resource_ref(self, name: str) -> Any:
        """!Ref of a resource: the physical id CloudFormation would give it."""
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
        if kind == "AWS::SNS::Topic":  # CloudFormation's Ref of a topic is its ARN
            topic = self._name_property(name, "TopicName", 256)
            return f"arn:{ident.partition}:sns:{ident.region}:{ident.account_id}:{topic}"
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            layer = self._name_property(name, "LayerName")
            return f"arn:{ident.partition}:lambda:{ident.region}:{ident.account_id}:layer:{layer}:1"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return self._name_property(name, "FunctionName")
        if kind == "AWS::Logs::LogGroup":
            return self._name_property(name, "LogGroupName", 512)
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
        elif kind == "AWS::SNS::Topic":
            arn = self.ref(logical_id)
            values = {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[-1]}
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            values = {"Arn": f"{arn_prefix}:lambda:{ident.region}:{ident.account_id}:function:{self.ref(logical_id)}"}
        elif kind == "AWS::Logs::LogGroup":  # CloudFormation's Arn of a log group ends in :*
            values = {"Arn": f"{arn_prefix}:logs:{ident.region}:{ident.account_id}:log-group:{self.ref(logical_id)}:*"}
        else:
            service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "unknown"
            values = {"Arn": f"{arn_prefix}:{service}:{ident.region}:{ident.account_id}:{self.ref(logical_id)}"}
        if attribute not in values:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not supported for {kind}")
        return values[attribute]
