"""ImageStore on S3, JobQueue on SQS, EventPublisher on SNS, the Auto Scaling lifecycle action; the boto3 clients are
made by bootstrap and injected."""
from __future__ import annotations

import base64
import json

from cxr_core.domain import JobMessage
from cxr_core.ports import StoredObject


class S3ImageStore:
    def __init__(self, s3_client, bucket: str):
        self._s3 = s3_client
        self._bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type,
                            ServerSideEncryption="AES256")

    def get(self, key: str, verify_checksum: bool = True) -> bytes:
        """The client validates responses only when asked (bootstrap: response_checksum_validation=when_required)."""
        extra = {"ChecksumMode": "ENABLED"} if verify_checksum else {}
        return self._s3.get_object(Bucket=self._bucket, Key=key, **extra)["Body"].read()

    def head(self, key: str) -> StoredObject | None:
        try:
            response = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        checksum = response.get("ChecksumSHA256")
        whole = checksum and "-" not in checksum and response.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
        return StoredObject(int(response["ContentLength"]), base64.b64decode(checksum).hex() if whole else None)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def presign_put(self, key: str, content_type: str, expires_seconds: int, size: int,
                    checksum_sha256: str | None = None) -> tuple[str, dict[str, str]]:
        params = {"Bucket": self._bucket, "Key": key, "ContentType": content_type, "ServerSideEncryption": "AES256",
                  "ContentLength": size}
        headers = {"Content-Type": content_type, "x-amz-server-side-encryption": "AES256"}
        if checksum_sha256:
            params["ChecksumSHA256"] = headers["x-amz-checksum-sha256"] = checksum_sha256
        url = self._s3.generate_presigned_url("put_object", ExpiresIn=expires_seconds, HttpMethod="PUT", Params=params)
        return url, headers  # Content-Length is signed too: the client's HTTP library sends the body's own


class SqsJobQueue:
    def __init__(self, sqs_client, queue_url: str, dlq_url: str | None = None):
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._dlq_url = dlq_url

    def send(self, message: JobMessage) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(message.to_dict()))

    def _count(self, url: str) -> dict:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return {"visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))}

    def depth(self) -> dict:
        depth = self._count(self._queue_url)
        if self._dlq_url:
            depth["dead_letter"] = self._count(self._dlq_url)["visible"]
        return depth


class SnsEventPublisher:
    """Job events on the SNS topic; message attributes let a subscription's filter policy pick a client's events."""

    def __init__(self, sns_client, topic_arn: str):
        self._sns = sns_client
        self._topic_arn = topic_arn

    def publish(self, event: dict, attributes: dict[str, str]) -> None:
        self._sns.publish(TopicArn=self._topic_arn, Message=json.dumps(event),
                          MessageAttributes={name: {"DataType": "String", "StringValue": value}
                                             for name, value in attributes.items()})


class AutoScalingLifecycleAction:
    """This instance's termination lifecycle action in its Auto Scaling group: CONTINUE once the worker drained."""

    def __init__(self, autoscaling_client, group_name: str, hook_name: str):
        self._autoscaling = autoscaling_client
        self.group_name, self.hook_name = group_name, hook_name

    def complete(self, instance_id: str) -> None:
        self._autoscaling.complete_lifecycle_action(
            LifecycleHookName=self.hook_name, AutoScalingGroupName=self.group_name, InstanceId=instance_id,
            LifecycleActionResult="CONTINUE")
