"""The stack's AWS endpoint (moto) takes only requests signed by the stack's own identity, on every interface."""
from __future__ import annotations

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.images import perturbed_png

pytestmark = pytest.mark.e2e


def outsider(stack, service: str, key: str = "testing"):
    """What a client that learnt the endpoint from a presigned URL can build: any key pair but the stack's."""
    return boto3.client(service, endpoint_url=stack.moto_endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=key, config=Config(retries={"total_max_attempts": 1}))


def test_tables_queues_and_buckets_refuse_other_identities(local_stack):
    resources = local_stack.info["resources"]
    calls = [
        lambda c: c("dynamodb").scan(TableName=resources["tables"]["JobsTable"]),
        lambda c: c("dynamodb").put_item(TableName=resources["tables"]["ApiKeysTable"], Item={
            "key_hash": {"S": "0" * 64}, "client_id": {"S": "forged"}, "role": {"S": "operator"},
            "created_at": {"S": "2026-01-01T00:00:00.000Z"}}),
        lambda c: c("s3").list_objects_v2(Bucket=resources["buckets"]["ImagesBucket"]),
        lambda c: c("sqs").receive_message(QueueUrl=resources["queues"]["JobsQueue"]),
    ]
    for call in calls:
        for key in ("testing", local_stack.info["aws_access_key_id"]):  # a right key id with a wrong secret too
            with pytest.raises(ClientError) as refused:
                call(lambda service: outsider(local_stack, service, key))
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    for path in ("/", "/moto-api/", "/moto-api/reset"):
        assert requests.get(local_stack.moto_endpoint + path, timeout=10).status_code == 403
    assert "Items" in local_stack.aws("dynamodb").scan(TableName=resources["tables"]["JobsTable"], Limit=1)


def test_a_presigned_url_opens_its_one_object_and_nothing_else(local_stack, http):
    data = perturbed_png(161)
    grant = http.post(f"{local_stack.url}/v1/uploads", json={"content_type": "image/png", "size": len(data)},
                      timeout=10).json()
    for edit in ("uploads/", "images/"):  # another client's upload prefix, the content-addressed images
        edited = grant["url"].replace("/uploads/", f"/{edit}other/", 1)
        assert requests.put(edited, data=data, headers=grant["headers"], timeout=10).status_code == 403
    assert requests.put(grant["url"], data=data, headers={"Content-Type": "image/jpeg"}, timeout=10).status_code == 403
    assert requests.get(grant["url"], timeout=10).status_code == 403  # a PUT grant is not a GET
    assert requests.put(grant["url"], data=data, headers=grant["headers"], timeout=10).status_code == 200
    assert "aws_secret_access_key" not in grant["url"].lower() and local_stack.info["aws_secret_access_key"] \
        not in str(grant)
