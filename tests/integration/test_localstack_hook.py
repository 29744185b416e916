"""The LocalStack hook creates exactly what template.yaml declares; run here against moto's server, as Docker is absent."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from cxr_local.processes import free_port
from cxr_local.template import declared_resources

from tests.unit.template_support import REPO, raw

pytestmark = pytest.mark.integration
MOTO_ACCOUNT = "123456789012"
STAGE = "local"


@pytest.fixture(scope="module")
def endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def run_hook(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CXR_ENDPOINT": endpoint, "CXR_ACCOUNT_ID": MOTO_ACCOUNT, "CXR_STAGE": STAGE,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run([sys.executable, "-m", "cxr_local.endpoint", *args], capture_output=True, text=True, env=env,
                          cwd=REPO / "localstack", timeout=120)


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def resolve_name(value) -> str:
    """Independent of cxr_local: the template's names are Fn::Sub over Stage and the account id only."""
    text = value["Fn::Sub"]
    return text.replace("${Stage}", STAGE).replace("${AWS::AccountId}", MOTO_ACCOUNT)


def declared_by_kind(kind: str) -> dict[str, dict]:
    return {resolve_name(spec["Properties"][{"AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueName",
                                             "AWS::S3::Bucket": "BucketName"}[kind]]): spec["Properties"]
            for spec in raw()["Resources"].values() if spec["Type"] == kind and "Condition" not in spec}


@pytest.fixture(scope="module")
def hook_run(endpoint):
    done = run_hook(endpoint)
    assert done.returncode == 0, done.stderr
    return done


def test_hook_creates_the_declared_tables_with_their_keys_ttl_and_pitr(endpoint, hook_run):
    dynamodb = client(endpoint, "dynamodb")
    declared = declared_by_kind("AWS::DynamoDB::Table")
    assert set(dynamodb.list_tables()["TableNames"]) == set(declared)
    assert {"cxr-local-jobs", "cxr-local-results"} <= set(declared)
    for name, props in declared.items():
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"]
        assert ({i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])}
                == {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])})
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in props:
            assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == (
                "ENABLED", props["TimeToLiveSpecification"]["AttributeName"])
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr = "PointInTimeRecoverySpecification" in props
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == ("ENABLED" if pitr else "DISABLED")


def test_hook_creates_the_declared_queues_with_visibility_and_redrive(endpoint, hook_run):
    sqs = client(endpoint, "sqs")
    template = raw()
    declared = declared_by_kind("AWS::SQS::Queue")
    names = {url.rsplit("/", 1)[-1] for url in sqs.list_queues()["QueueUrls"]}
    assert names == set(declared) == {"cxr-local-jobs", "cxr-local-jobs-dlq"}
    timeout = str(template["Parameters"]["InferTimeoutSeconds"]["Default"])
    attributes = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="cxr-local-jobs")["QueueUrl"],
                                          AttributeNames=["All"])["Attributes"]
    assert int(attributes["VisibilityTimeout"]) == template["Mappings"]["InferTimeouts"][timeout]["VisibilityTimeout"]
    assert int(attributes["VisibilityTimeout"]) >= 6 * int(timeout)
    assert attributes["MessageRetentionPeriod"] == str(declared["cxr-local-jobs"]["MessageRetentionPeriod"])
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:cxr-local-jobs-dlq"
    assert int(redrive["maxReceiveCount"]) == template["Parameters"]["MaxReceiveCount"]["Default"]


def test_hook_creates_the_declared_bucket_private_encrypted_and_expiring(endpoint, hook_run):
    s3 = client(endpoint, "s3")
    declared = declared_by_kind("AWS::S3::Bucket")
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == set(declared) == {f"cxr-local-images-{MOTO_ACCOUNT}"}
    name = next(iter(declared))
    assert s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == {
        key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
    rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"][0]
    assert lifecycle["Expiration"]["Days"] == raw()["Parameters"]["JobTtlDays"]["Default"]


def test_embedded_local_stack_declares_the_same_resources_as_the_hook(endpoint, hook_run):
    local = declared_resources(REPO / "template.yaml", {"Stage": STAGE})
    assert set(local["tables"]) == set(declared_by_kind("AWS::DynamoDB::Table"))
    assert set(local["queues"]) == set(declared_by_kind("AWS::SQS::Queue"))
    assert {name.rsplit("-", 1)[0] for name in local["buckets"]} == {"cxr-local-images"}


def test_rerun_keeps_resources_and_a_drifted_queue_is_reported(endpoint, hook_run):
    again = run_hook(endpoint)
    assert again.returncode == 0 and "already present" in again.stdout
    sqs = client(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName="cxr-local-jobs")["QueueUrl"]
    original = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    try:
        drifted = run_hook(endpoint)
        assert drifted.returncode == 1 and "VisibilityTimeout=30" in drifted.stderr
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=original)


def test_print_env_points_the_service_at_the_endpoint(endpoint, hook_run):
    done = run_hook(endpoint, "--print-env")
    env = dict(re.fullmatch(r"export (\w+)=(.*)", line).groups() for line in done.stdout.splitlines())
    assert env["AWS_ENDPOINT_URL"] == endpoint
    assert env["JOBS_TABLE"] == "cxr-local-jobs"
    assert env["QUEUE_URL"] == client(endpoint, "sqs").get_queue_url(QueueName="cxr-local-jobs")["QueueUrl"]
    assert set(raw()["Globals"]["Function"]["Environment"]["Variables"]) <= set(env)


HOOK = REPO / "localstack" / "init" / "ready.d" / "10-cxr-resources.py"


def run_ready_hook(endpoint: str, stage: str) -> subprocess.CompletedProcess:
    """The ready.d script as LocalStack runs it: executed inside an already running interpreter, not as __main__."""
    env = {**os.environ, "CXR_ROOT": str(REPO), "CXR_ENDPOINT": endpoint, "CXR_ACCOUNT_ID": MOTO_ACCOUNT,
           "CXR_STAGE": stage, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test"}
    code = (f"import runpy, sys; runpy.run_path({str(HOOK)!r}); "
            "print('interpreter still running after the hook')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_ready_hook_runs_in_process_and_raises_instead_of_exiting(endpoint, hook_run):
    done = run_ready_hook(endpoint, "hooktest")
    assert done.returncode == 0, done.stderr
    assert "interpreter still running after the hook" in done.stdout
    assert "cxr-hooktest-jobs" in client(endpoint, "dynamodb").list_tables()["TableNames"]
    sqs = client(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName="cxr-hooktest-jobs-dlq")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
    drifted = run_ready_hook(endpoint, "hooktest")
    assert drifted.returncode != 0 and "RuntimeError: cxr: LocalStack resources differ" in drifted.stderr
    assert "MessageRetentionPeriod=60" in drifted.stderr


def test_compose_mounts_what_the_hook_reads_and_enables_the_three_services():
    compose = yaml.safe_load((REPO / "localstack" / "docker-compose.yml").read_text())
    service = compose["services"]["localstack"]
    assert set(service["environment"]["SERVICES"].split(",")) == {"s3", "sqs", "dynamodb"}
    mounts = {target: (REPO / "localstack" / source).resolve()
              for source, target, *_ in (volume.split(":") for volume in service["volumes"])}
    assert all(path.exists() for path in mounts.values()), mounts
    assert mounts["/etc/localstack/init/ready.d"] == (REPO / "localstack/init/ready.d").resolve()
    hook = HOOK.read_text()
    root = re.search(r'"CXR_ROOT", "([^"]+)"', hook).group(1)
    for used in re.findall(r'f"\{root\}(/[^"]+)"', hook):
        assert any(root + used == target or (root + used).startswith(target + "/") for target in mounts), used
    assert {f"{root}/template.yaml", f"{root}/local/cxr_local"} <= set(mounts)
    assert service["environment"]["PYTHONPATH"] == f"{root}/local"  # the hook imports cxr_local.endpoint
