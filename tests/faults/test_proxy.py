"""The fault proxy itself, against a real moto server: classification, each fault kind, run-time rules."""
from __future__ import annotations

import os
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from cxr_local.processes import free_port, start_moto, stop, wait_for_http
from tests.faults.harness import REPO
from tests.faults.proxy import FaultProxy, ProxyControl

pytestmark = [pytest.mark.faults, pytest.mark.integration]
CONNECTION_LOST = (ConnectionClosedError, EndpointConnectionError)


@pytest.fixture(scope="module")
def proxied():
    port = free_port()
    moto = start_moto("127.0.0.1", port, env={**os.environ, "AWS_ACCESS_KEY_ID": "testing",
                                              "AWS_SECRET_ACCESS_KEY": "testing"}, cwd=REPO, log=subprocess.DEVNULL)
    proxy = FaultProxy(f"http://127.0.0.1:{port}").start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", moto, timeout_s=30)
        options = dict(endpoint_url=proxy.url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
        clients = {name: boto3.client(name, **options) for name in ("s3", "sqs", "dynamodb")}
        clients["s3"].create_bucket(Bucket="fault-proxy-test")
        queue = clients["sqs"].create_queue(QueueName="fault-proxy-test")["QueueUrl"]
        clients["dynamodb"].create_table(TableName="fault-proxy-test", BillingMode="PAY_PER_REQUEST",
                                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
        yield proxy, ProxyControl(proxy.url), clients, queue
    finally:
        proxy.shutdown()
        proxy.server_close()
        stop(moto, grace_s=5)


def _calls(clients, queue):
    return {
        ("s3", "PutObject"): lambda: clients["s3"].put_object(Bucket="fault-proxy-test", Key="images/a", Body=b"x" * 99),
        ("s3", "GetObject"): lambda: clients["s3"].get_object(Bucket="fault-proxy-test", Key="images/a")["Body"].read(),
        ("sqs", "SendMessage"): lambda: clients["sqs"].send_message(QueueUrl=queue, MessageBody="m"),
        ("dynamodb", "TransactWriteItems"): lambda: clients["dynamodb"].transact_write_items(TransactItems=[
            {"Put": {"TableName": "fault-proxy-test", "Item": {"k": {"S": "a"}}}}]),
    }


def test_operations_are_classified_as_botocore_names_them(proxied):
    proxy, control, clients, queue = proxied
    before = control.state()["seen"]
    for call in _calls(clients, queue).values():
        call()
    seen = control.state()["seen"]
    for service, operation in _calls(clients, queue):
        assert seen.get(f"{service}.{operation}", 0) > before.get(f"{service}.{operation}", 0), seen


@pytest.mark.parametrize(("fault", "expected"), [("500", ClientError), ("503", ClientError),
                                                 ("throttle", ClientError), ("drop", CONNECTION_LOST),
                                                 ("drop_after", CONNECTION_LOST)])
def test_each_fault_reaches_the_client_once_then_the_call_works(proxied, fault, expected):
    proxy, control, clients, queue = proxied
    for (service, operation), call in _calls(clients, queue).items():
        if operation == "GetObject":
            continue
        control.set({"service": service, "operation": operation, "fault": fault, "times": 1})
        with pytest.raises(expected) as raised:
            call()
        if isinstance(raised.value, ClientError):
            code = raised.value.response["Error"]["Code"]
            assert code in {"500": ("InternalError", "InternalServerError"), "503": ("ServiceUnavailable", "SlowDown"),
                            "throttle": ("ThrottlingException", "SlowDown")}[fault], code
        call()  # the rule is spent
    assert control.clear()["rules"] == []


def test_drop_after_lets_the_call_take_effect(proxied):
    proxy, control, clients, queue = proxied
    sqs = clients["sqs"]
    clients["sqs"].purge_queue(QueueUrl=queue)
    control.set({"service": "sqs", "operation": "SendMessage", "fault": "drop_after", "times": 1})
    with pytest.raises(CONNECTION_LOST):
        sqs.send_message(QueueUrl=queue, MessageBody="landed")
    received = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in received] == ["landed"]


def test_probability_rules_hit_about_that_share_and_bad_rules_are_refused(proxied):
    proxy, control, clients, queue = proxied
    control.set({"service": "s3", "operation": "GetObject", "fault": "500", "probability": 0.5})
    failures = 0
    for _ in range(60):
        try:
            clients["s3"].get_object(Bucket="fault-proxy-test", Key="images/a")
        except ClientError:
            failures += 1
    control.clear()
    assert 15 <= failures <= 45
    with pytest.raises(ValueError):
        control.set({"fault": "explode", "times": 1})
    with pytest.raises(ValueError):
        control.set({"fault": "500"})
