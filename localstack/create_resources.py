"""Creates template.yaml's tables, queues and bucket on LocalStack (or any AWS-compatible endpoint) and checks them.

It reuses the embedded local stack's template reader (local/cxr_local), so the names, key schemas, TTL, PITR and
redrive come from template.yaml, never from a hand-kept list. Needs only boto3 and PyYAML, which LocalStack's own
Python carries; the ready.d hook runs it inside the container, `python localstack/create_resources.py` runs it
from a checkout against any endpoint; `--print-env` prints the service's environment for that endpoint instead.

Environment: CXR_ENDPOINT (http://localhost:4566), CXR_STAGE (local), CXR_ACCOUNT_ID (000000000000),
AWS_DEFAULT_REGION (us-east-1), CXR_TEMPLATE (../template.yaml), CXR_LOCAL_PACKAGE (../local/cxr_local).
"""
from __future__ import annotations

import importlib
import json
import os
import shlex
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import boto3

HERE = Path(__file__).resolve().parent
DEFAULTS = {
    "CXR_ENDPOINT": "http://localhost:4566",
    "CXR_STAGE": "local",
    "CXR_ACCOUNT_ID": "000000000000",  # LocalStack's default account
    "AWS_DEFAULT_REGION": "us-east-1",
    "CXR_TEMPLATE": str(HERE.parent / "template.yaml"),
    "CXR_LOCAL_PACKAGE": str(HERE.parent / "local" / "cxr_local"),
}


def setting(name: str) -> str:
    return os.environ.get(name) or DEFAULTS[name]


def import_template_reader(package_dir: str) -> types.SimpleNamespace:
    """cxr_local's template/resources modules without its package __init__ (which may import the whole stack)."""
    if "cxr_local" not in sys.modules:
        package = types.ModuleType("cxr_local")
        package.__path__ = [package_dir]
        sys.modules["cxr_local"] = package
    return types.SimpleNamespace(
        template=importlib.import_module("cxr_local.template"),
        resources=importlib.import_module("cxr_local.resources"),
        intrinsics=importlib.import_module("cxr_local.intrinsics"),
    )


class EndpointSession:
    """A boto3 session whose clients all talk to one endpoint (what create_stack_resources expects of a session)."""

    def __init__(self, endpoint: str, region: str) -> None:
        self.endpoint = endpoint
        self._session = boto3.session.Session(aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                                              aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
                                              region_name=region)

    def client(self, service: str, **kwargs: Any):
        return self._session.client(service, endpoint_url=self.endpoint, **kwargs)


def queue_url_base(session: EndpointSession) -> str:
    """Where this endpoint puts queue URLs (LocalStack's form depends on SQS_ENDPOINT_STRATEGY): ask it once."""
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=f"cxr-probe-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    return url.rsplit("/", 2)[0]


def stack_template(session: EndpointSession, reader: types.SimpleNamespace | None = None):
    reader = reader or import_template_reader(setting("CXR_LOCAL_PACKAGE"))
    identity = reader.intrinsics.StackIdentity(stack_name=f"cxr-{setting('CXR_STAGE')}",
                                               region=setting("AWS_DEFAULT_REGION"),
                                               account_id=setting("CXR_ACCOUNT_ID"),
                                               queue_url_base=queue_url_base(session))
    return reader.template.StackTemplate(setting("CXR_TEMPLATE"), {"Stage": setting("CXR_STAGE")}, identity)


def existing(session: EndpointSession, template) -> dict[str, list[str]]:
    """Which declared tables/queues/buckets the endpoint already has (LocalStack with persistence re-runs hooks)."""
    tables = set(session.client("dynamodb").list_tables()["TableNames"])
    queues = {url.rsplit("/", 1)[-1] for url in session.client("sqs").list_queues().get("QueueUrls", [])}
    buckets = {bucket["Name"] for bucket in session.client("s3").list_buckets()["Buckets"]}
    return {"tables": sorted(set(template.tables()) & tables), "queues": sorted(set(template.queues()) & queues),
            "buckets": sorted(set(template.buckets()) & buckets)}


def verify(session: EndpointSession, template) -> list[str]:
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


def service_environment(session: EndpointSession, template) -> dict[str, str]:
    """The functions' environment as template.yaml's Globals resolve for this endpoint, for running the code on it."""
    env = dict(template.function("InferFunction").environment)
    env.update(AWS_ENDPOINT_URL=session.endpoint, AWS_DEFAULT_REGION=setting("AWS_DEFAULT_REGION"),
               AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
               AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
               MODEL_DIR=str(HERE.parent / "layers" / "model" / "weights"))
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
        created = sys.modules["cxr_local.resources"].create_stack_resources(template, session)
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
