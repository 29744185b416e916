"""The local stack's moto server: TransactWriteItems all-or-nothing with its item-level rollback, keep-alive, stop."""
import http.client
import signal
import threading
import time

import boto3
import psutil
import pytest

from cxr_local.waiting import wait_until
from tests.integration.conftest import running_moto

pytestmark = pytest.mark.integration


@pytest.fixture
def table(moto_endpoint):
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    name = "rollback-check"
    if name not in client.list_tables()["TableNames"]:
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    for index in range(50):  # a table that is not empty, as the stack's tables are not
        client.put_item(TableName=name, Item={"pk": {"S": f"row-{index}"}, "n": {"N": "0"}})
    return client, name


def test_a_cancelled_transaction_changes_nothing(table):
    client, name = table
    with pytest.raises(client.exceptions.TransactionCanceledException) as raised:
        client.transact_write_items(TransactItems=[
            {"Update": {"TableName": name, "Key": {"pk": {"S": "row-1"}}, "UpdateExpression": "SET n = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "new-row"}, "n": {"N": "1"}}}},
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "row-2"}}}},
            {"Update": {"TableName": name, "Key": {"pk": {"S": "row-3"}}, "UpdateExpression": "SET n = :one",
                        "ConditionExpression": "n = :two",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}}}},
        ])
    codes = [reason["Code"] for reason in raised.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "None", "ConditionalCheckFailed"]
    get = lambda key: client.get_item(TableName=name, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    assert get("row-1")["n"] == {"N": "0"}
    assert get("new-row") is None
    assert get("row-2") is not None
    assert get("row-3")["n"] == {"N": "0"}
    assert client.scan(TableName=name, Select="COUNT")["Count"] == 50


def test_a_committed_transaction_applies_every_item(table):
    client, name = table
    client.transact_write_items(TransactItems=[
        {"Update": {"TableName": name, "Key": {"pk": {"S": "row-5"}}, "UpdateExpression": "SET n = :one",
                    "ConditionExpression": "n = :zero",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}}}},
        {"Put": {"TableName": name, "Item": {"pk": {"S": "row-added"}, "n": {"N": "7"}}}},
    ])
    assert client.get_item(TableName=name, Key={"pk": {"S": "row-5"}})["Item"]["n"] == {"N": "1"}
    assert client.get_item(TableName=name, Key={"pk": {"S": "row-added"}})["Item"]["n"] == {"N": "7"}


def test_connections_are_kept_alive(moto_endpoint):
    """Werkzeug's server closed every connection; the local stack's moto answers many calls on one."""
    host, port = moto_endpoint.removeprefix("http://").split(":")
    idle = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(20)]  # as a stack's pools hold
    for other in idle:
        other.request("GET", "/moto-api/")
        other.getresponse().read()
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    peers = set()
    for _ in range(3):
        connection.request("GET", "/moto-api/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert (response.getheader("Connection") or "").lower() != "close"
        peers.add(connection.sock.getsockname())
    connection.close()
    for other in idle:
        other.close()
    assert len(peers) == 1


def test_sigterm_stops_the_server_with_a_long_poll_in_flight():
    with running_moto() as (process, endpoint):
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        queue_url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
        connections = lambda: len([c for c in psutil.Process(process.pid).net_connections("tcp")  # noqa: E731
                                   if c.status == psutil.CONN_ESTABLISHED])
        idle = connections()
        poller_sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                                  aws_secret_access_key="testing")  # a connection of its own: seen when it opens
        poller = threading.Thread(target=lambda: _ignore_errors(poller_sqs.receive_message, QueueUrl=queue_url,
                                                                WaitTimeSeconds=20), daemon=True)
        poller.start()
        wait_until(lambda: connections() > idle, 30, interval_s=0.01, what="the long poll connected")
        assert poller.is_alive()  # and waiting: nothing to receive for 20 s
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - began < 10


def _ignore_errors(call, **kwargs):
    try:
        call(**kwargs)
    except Exception:  # noqa: BLE001 - the server going away mid-poll is the point
        pass
