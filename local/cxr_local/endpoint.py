"""template.yaml's tables, queues, buckets and topics on an AWS-compatible endpoint (LocalStack, a moto server):
a session on it, which of them it has, how they differ from the template, and the command that creates them.

`python -m cxr_local.endpoint` creates what is missing and checks the rest (LocalStack's ready hook runs the same
`main` inside its container); `--print-env` prints the service's environment for that endpoint instead.
Environment: CXR_ENDPOINT (http://localhost:4566), CXR_STAGE (local), CXR_ACCOUNT_ID (000000000000),
AWS_DEFAULT_REGION (us-east-1), CXR_TEMPLATE (the checkout's template.yaml).
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3

from .intrinsics import StackIdentity
from .resources import create_stack_resources
from .template import StackTemplate

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = {
    "CXR_ENDPOINT": "http://localhost:4566",
    "CXR_STAGE": "local",
    "CXR_ACCOUNT_ID": "000000000000",  # LocalStack's default account
    "AWS_DEFAULT_REGION": "us-east-1",
    "CXR_TEMPLATE": str(REPO / "template.yaml"),
}


def setting(name: str) -> str:
    return os.environ.get(name) or DEFAULTS[name]


class EndpointSession:
    """A boto3 session whose clients all talk to one endpoint (what create_stack_resources expects of a session)."""

    def __init__(self, endpoint: str, region: str) -> None:
        self.endpoint = endpoint
        self._session = boto3.session.Session(aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                                              aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
                                              region_name=region)

    def client(self, service: str, **kwargs: Any):
        return self._session.client(service, endpoint_url=self.endpoint, **kwargs)


def queue_url_parts(session: EndpointSession) -> tuple[str, str]:
    """(base, account) of this endpoint's queue URLs (LocalStack's depend on SQS_ENDPOINT_STRATEGY): asked once."""
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=f"cxr-probe-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    base, account, _ = url.rsplit("/", 2)
    return base, account


def stack_template(session: EndpointSession) -> StackTemplate:
    identity = StackIdentity(stack_name=f"cxr-{setting('CXR_STAGE')}", region=setting("AWS_DEFAULT_REGION"),
                             account_id=setting("CXR_ACCOUNT_ID"), queue_url_base=queue_url_parts(session)[0])
    return StackTemplate(setting("CXR_TEMPLATE"), {"Stage": setting("CXR_STAGE")}, identity)


def existing(session: EndpointSession, template: StackTemplate) -> dict[str, list[str]]:
    """Which declared tables/queues/buckets the endpoint already has (LocalStack with persistence re-runs hooks)."""
    tables = set(session.client("dynamodb").list_tables()["TableNames"])
    queues = {url.rsplit("/", 1)[-1] for url in session.client("sqs").list_queues().get("QueueUrls", [])}
    buckets = {bucket["Name"] for bucket in session.client("s3").list_buckets()["Buckets"]}
    return {"tables": sorted(set(template.tables()) & tables), "queues": sorted(set(template.queues()) & queues),
            "buckets": sorted(set(template.buckets()) & buckets)}


def verify(session: EndpointSession, template: StackTemplate) -> list[str]:
    """Differences between what the endpoint has and what template.yaml declares (empty when they agree)."""
    problems = []
    dynamodb, sqs = session.client("dynamodb"), session.client("sqs")
    for name, declared in template.tables().items():
        table = dynamodb.describe_table(TableName=name)["Table"]
        if table["KeySchema"] != declared["key_schema"]:
            problems.append(f"table {name}: key schema {table['KeySchema']}")
        indexes = {index["IndexName"]: index["KeySchema"] for index in table.get("GlobalSecondaryIndexes", [])}
        if indexes != declared["global_secondary_indexes"]:
            problems.append(f"table {name}: indexes {indexes}")
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("AttributeName") != declared["ttl_attribute"]:
            problems.append(f"table {name}: TTL {ttl}")
    for name, declared in template.queues().items():
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in declared["attributes"] and attributes.get(key) != declared["attributes"][key]:
                problems.append(f"queue {name}: {key}={attributes.get(key)}")
        redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
        actual = {"dead_letter_queue": redrive["deadLetterTargetArn"].rsplit(":", 1)[-1],
                  "max_receive_count": int(redrive["maxReceiveCount"])} if redrive else None
        if actual != declared["redrive"]:
            problems.append(f"queue {name}: redrive {actual}")
    buckets = {bucket["Name"] for bucket in session.client("s3").list_buckets()["Buckets"]}
    problems += [f"bucket {name} missing" for name in template.buckets() if name not in buckets]
    return problems


def service_environment(session: EndpointSession, template: StackTemplate) -> dict[str, str]:
    """The functions' environment as template.yaml's Globals resolve for this endpoint, for running the code on it."""
    env = dict(template.function("InferFunction").environment)
    env.update(AWS_ENDPOINT_URL=session.endpoint, AWS_DEFAULT_REGION=setting("AWS_DEFAULT_REGION"),
               AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
               AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
               MODEL_DIR=str(REPO / "layers" / "model" / "weights"))
    return env


def main(argv: list[str] | None = None) -> int:
    session = EndpointSession(setting("CXR_ENDPOINT"), setting("AWS_DEFAULT_REGION"))
    template = stack_template(session)
    if "--print-env" in (sys.argv[1:] if argv is None else argv):
        for key, value in sorted(service_environment(session, template).items()):
            print(f"export {key}={shlex.quote(value)}")
        return 0
    present = existing(session, template)
    if not any(present.values()):
        created = create_stack_resources(template, session)
        print(f"cxr: created {json.dumps(created, sort_keys=True)}")
    else:
        print(f"cxr: already present, not recreated: {json.dumps(present, sort_keys=True)}")
    problems = verify(session, template)
    if problems:
        print("cxr: resources differ from template.yaml:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"cxr: {len(template.tables())} tables, {len(template.queues())} queues, {len(template.buckets())} "
          f"buckets match template.yaml (Stage={setting('CXR_STAGE')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
