"""The local stack created exactly the tables, queues and buckets template.yaml declares (asked of moto itself)."""
from __future__ import annotations

import json
import os
import signal
import threading

import psutil
import pytest
import requests

from cxr_local.template import declared_resources
from cxr_local.waiting import wait_until
from tests.images import perturbed_png

from .conftest import REPO, start_stack

pytestmark = pytest.mark.e2e


def test_tables_match_the_template(local_stack):
    declared = declared_resources(REPO / "template.yaml", {"Stage": "local"})["tables"]
    dynamodb = local_stack.aws("dynamodb")
    assert set(dynamodb.list_tables()["TableNames"]) == set(declared)
    for name, table in declared.items():
        actual = dynamodb.describe_table(TableName=name)["Table"]
        assert actual["KeySchema"] == table["key_schema"]
        assert sorted(actual["AttributeDefinitions"], key=str) == sorted(table["attribute_definitions"], key=str)
        assert {index["IndexName"]: index["KeySchema"] for index in actual.get("GlobalSecondaryIndexes", [])} \
            == table["global_secondary_indexes"]
        assert actual["BillingModeSummary"]["BillingMode"] == table["billing_mode"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert (ttl.get("AttributeName") if ttl["TimeToLiveStatus"] == "ENABLED" else None) == table["ttl_attribute"]


def test_queues_match_the_template(local_stack):
    declared = declared_resources(REPO / "template.yaml", {"Stage": "local"})["queues"]
    sqs = local_stack.aws("sqs")
    urls = sqs.list_queues().get("QueueUrls", [])
    assert {url.rsplit("/", 1)[-1] for url in urls} == set(declared)
    for name, queue in declared.items():
        attributes = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"],
                                              AttributeNames=["All"])["Attributes"]
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            if key in queue["attributes"]:
                assert attributes[key] == queue["attributes"][key], key
        if queue["redrive"] is None:
            assert "RedrivePolicy" not in attributes
            continue
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == queue["redrive"]["max_receive_count"]
        assert redrive["deadLetterTargetArn"].rsplit(":", 1)[-1] == queue["redrive"]["dead_letter_queue"]
        assert queue["redrive"]["dead_letter_queue"] in declared


def test_buckets_match_the_template(local_stack):
    declared = declared_resources(REPO / "template.yaml", {"Stage": "local"})["buckets"]
    s3 = local_stack.aws("s3")
    assert {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]} == set(declared)
    for name, bucket in declared.items():
        props = bucket["properties"]
        if "BucketEncryption" in props:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
            assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == \
                props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
                    "ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        for rule in (props.get("LifecycleConfiguration") or {}).get("Rules", []):
            actual = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
            match = next(item for item in actual if item.get("ID") == rule.get("Id"))
            if "ExpirationInDays" in rule:
                assert match["Expiration"]["Days"] == int(rule["ExpirationInDays"])


def test_handlers_got_the_template_settings(local_stack):
    """The settings the running handlers report match what the template resolves for Stage=local."""
    info = local_stack.info
    declared = declared_resources(REPO / "template.yaml", {"Stage": "local"})
    assert set(info["resources"]["tables"].values()) == set(declared["tables"])
    assert {url.rsplit("/", 1)[-1] for url in info["resources"]["queues"].values()} == set(declared["queues"])
    assert info["weights"]["random_init"] is True


@pytest.mark.slow
def test_sigterm_to_the_process_group_answers_the_requests_in_hand_and_stops_every_process(tmp_path):
    """A terminal's Ctrl-C or `kill -TERM -<pgid>` reaches every process of the group at once: the function
    processes must outlive the requests in hand, requests arriving after it get 503, never 500, and nothing is
    left running."""
    stack = start_stack(tmp_path, "--no-build", workers=1, new_session=True)
    parent = psutil.Process(stack.process.pid)
    # moto + the infer workers (and their own processes), started by the stack as it comes up
    children = wait_until(lambda: len(found := parent.children(recursive=True)) >= 2 and found, 60,
                          what=lambda: f"2 child processes; have {parent.children(recursive=True)}")
    images = [perturbed_png(70_000 + i) for i in range(400)]
    codes: list[int] = []
    signalled = threading.Event()

    def client(offset: int) -> None:
        with requests.Session() as session:
            session.headers.update(stack.auth_headers)
            for data in images[offset::4]:
                try:
                    codes.append(session.post(f"{stack.url}/v1/jobs", files={"image": ("x.png", data)},
                                              timeout=60).status_code)
                except requests.ConnectionError:
                    if signalled.is_set():
                        return
                    raise

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(codes) >= 8, 60, what="8 answers before the signal")
    signalled.set()
    os.killpg(stack.process.pid, signal.SIGTERM)
    for thread in threads:
        thread.join(90)
    assert stack.process.wait(60) == 0, stack.log_tail()
    assert codes.count(201) >= 8 and set(codes) <= {201, 503}, sorted(set(codes))
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {alive}\n{stack.log_tail()}"
    assert not (tmp_path / "ready.json").exists()
    assert "stopped" in stack.log_tail()
