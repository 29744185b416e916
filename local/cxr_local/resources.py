"""Creates the tables, queues and buckets that template.yaml declares on an AWS-compatible endpoint (moto)."""
from __future__ import annotations

import json
from typing import Any

from .template import StackTemplate

_TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
               "StreamSpecification", "SSESpecification", "TableClass", "DeletionProtectionEnabled")
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")


def create_stack_resources(template: StackTemplate, session: Any) -> dict[str, dict]:
    """Create every declared table, queue (dead-letter queues first), bucket and topic; return their physical ids."""
    created = {"tables": {}, "queues": {}, "buckets": {}, "topics": {}}
    dynamodb = session.client("dynamodb")
    for name, table in template.tables().items():
        _create_table(dynamodb, name, table["properties"])
        created["tables"][table["logical_id"]] = name
    sqs = session.client("sqs")
    for name, queue in _dependency_order(template.queues()):
        url = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(queue["attributes"]))["QueueUrl"]
        if url != queue["url"]:
            raise RuntimeError(f"queue {name}: endpoint returned {url}, template resolved {queue['url']}")
        created["queues"][queue["logical_id"]] = url
    s3 = session.client("s3")
    for name, bucket in template.buckets().items():
        _create_bucket(s3, name, bucket["properties"])
        created["buckets"][bucket["logical_id"]] = name
    sns = session.client("sns")
    for arn, topic in template.topics().items():
        made = sns.create_topic(Name=arn.rsplit(":", 1)[-1])["TopicArn"]
        if made != arn:
            raise RuntimeError(f"topic {arn}: endpoint returned {made}")
        created["topics"][topic["logical_id"]] = arn
    return created


def _create_table(client: Any, name: str, props: dict) -> None:
    request = {key: props[key] for key in _TABLE_KEYS if key in props}
    if "SSESpecification" in request:  # CloudFormation says SSEEnabled/KMSMasterKeyId; the API says Enabled
        sse = dict(request["SSESpecification"])
        request["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled", True), **sse}
    if "SSESpecification" in request:
        sse = request["SSESpecification"]
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled")),
                                       **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse}}
    if "StreamSpecification" in request:
        request["StreamSpecification"] = {"StreamEnabled": True, **request["StreamSpecification"]}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(kind):
            request[kind] = [{key: index[key] for key in _INDEX_KEYS if key in index} for index in props[kind]]
    client.create_table(TableName=name, **request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and str(ttl.get("Enabled")).lower() == "true":
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    pitr = props.get("PointInTimeRecoverySpecification") or {}
    if str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true":
        client.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})


def _queue_attributes(attributes: dict[str, str]) -> dict[str, str]:
    result = dict(attributes)
    if "RedrivePolicy" in result:
        redrive = json.loads(result["RedrivePolicy"])
        redrive["maxReceiveCount"] = int(redrive["maxReceiveCount"])
        result["RedrivePolicy"] = json.dumps(redrive)
    return result


def _dependency_order(queues: dict[str, dict]) -> list[tuple[str, dict]]:
    by_logical = {queue["logical_id"]: (name, queue) for name, queue in queues.items()}
    ordered: list[tuple[str, dict]] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in visiting or any(item[1]["logical_id"] == logical_id for item in ordered):
            return
        visiting.add(logical_id)
        for dependency in by_logical[logical_id][1]["depends_on"]:
            if dependency in by_logical:
                visit(dependency)
        ordered.append(by_logical[logical_id])

    for logical_id in by_logical:
        visit(logical_id)
    return ordered


def _create_bucket(client: Any, name: str, props: dict) -> None:
    region = client.meta.region_name
    if region == "us-east-1":
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    encryption = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        rules = [{"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                  **{k: v for k, v in rule.items() if k == "BucketKeyEnabled"}} for rule in encryption]
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    public_access = props.get("PublicAccessBlockConfiguration")
    if public_access:
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=public_access)
    versioning = props.get("VersioningConfiguration")
    if versioning:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
    rules = (props.get("LifecycleConfiguration") or {}).get("Rules")
    if rules:
        client.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]})
    cors = (props.get("CorsConfiguration") or {}).get("CorsRules")
    if cors:
        client.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [_cors_rule(rule) for rule in cors]})


def _lifecycle_rule(rule: dict) -> dict:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    api_rule: dict[str, Any] = {"Status": rule.get("Status", "Enabled"), "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        api_rule["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        api_rule["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpirationInDays" in rule:
        api_rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        api_rule["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return api_rule


def _cors_rule(rule: dict) -> dict:
    """CloudFormation's CORS rule shape -> the S3 API's (MaxAge is MaxAgeSeconds, Id is ID)."""
    renamed = {"Id": "ID", "MaxAge": "MaxAgeSeconds"}
    return {renamed.get(key, key): int(value) if key == "MaxAge" else value for key, value in rule.items()}
