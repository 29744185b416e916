"""A moto server on loopback with the resources template.yaml declares, and a Runtime wired to it."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from cxr_local.processes import free_port, start_moto, stop, wait_for_http
from cxr_local.resources import create_stack_resources
from cxr_local.intrinsics import StackIdentity
from cxr_local.template import StackTemplate
from tests.model_support import built_model_dir

REPO = Path(__file__).resolve().parents[2]
STACK_PARAMETERS = {"Stage": "local"}
# A short visibility timeout so redelivery after a killed worker shows within a test's time.
TEST_VISIBILITY_SECONDS = 6
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}


@contextmanager
def running_moto():
    """The local stack's moto server on a free loopback port: yields (process, endpoint)."""
    port = free_port()
    process = start_moto("127.0.0.1", port, env={**os.environ, **AWS_ENV}, cwd=REPO, log=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(endpoint + "/moto-api/", process, timeout_s=30)
        yield process, endpoint
    finally:
        stop(process, grace_s=5)


@pytest.fixture(scope="session")
def moto_endpoint():
    with running_moto() as (_, endpoint):
        yield endpoint


@pytest.fixture(scope="session")
def stack_env(moto_endpoint):
    """The infer function's environment from template.yaml (Stage=local), pointed at moto."""
    os.environ.update(AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    template = StackTemplate(REPO / "template.yaml", STACK_PARAMETERS,
                             StackIdentity(stack_name="cxr-local", queue_url_base=moto_endpoint))
    session = boto3.session.Session(region_name="us-east-1")
    original_client = session.client
    session.client = lambda service, **kw: original_client(service, endpoint_url=moto_endpoint, **kw)
    created = create_stack_resources(template, session)
    session.client("sqs").set_queue_attributes(QueueUrl=created["queues"]["JobsQueue"],
                                               Attributes={"VisibilityTimeout": str(TEST_VISIBILITY_SECONDS)})
    env = dict(template.function("InferFunction").environment)
    env.update(AWS_ENV, AWS_ENDPOINT_URL=moto_endpoint, MODEL_DIR=built_model_dir(),
               VISIBILITY_TIMEOUT_SECONDS=str(TEST_VISIBILITY_SECONDS))
    return env


@pytest.fixture(scope="session")
def runtime(stack_env):
    """A Runtime on moto, its tables, bucket and queues the template's (Stage=local)."""
    from cxr_core.bootstrap import Runtime
    from cxr_core.config import settings

    config = replace(settings(), jobs_table=stack_env["JOBS_TABLE"], results_table=stack_env["RESULTS_TABLE"],
                     api_keys_table=stack_env["API_KEYS_TABLE"], rate_limits_table=stack_env["RATE_LIMITS_TABLE"],
                     images_bucket=stack_env["IMAGES_BUCKET"], queue_url=stack_env["QUEUE_URL"],
                     dlq_url=stack_env["DLQ_URL"], aws_endpoint_url=stack_env["AWS_ENDPOINT_URL"],
                     dynamodb_endpoint_url=stack_env["AWS_ENDPOINT_URL"],
                     model_dir=stack_env["MODEL_DIR"], max_receive_count=int(stack_env["MAX_RECEIVE_COUNT"]))
    return Runtime(config)


def purge_queue(runtime) -> None:
    """Delete every visible message (PurgeQueue is allowed once a minute only)."""
    for url in (runtime.settings.queue_url, runtime.settings.dlq_url):
        while messages := runtime.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                             WaitTimeSeconds=0).get("Messages"):
            runtime.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def python_with(env: dict) -> tuple[list[str], dict]:
    return [sys.executable], {**os.environ, **env, "PYTHONPATH": str(REPO)}
