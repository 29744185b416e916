"""Operator side of job events: subscribe one client's SQS queue to the topic, filtered to that client's events."""
from __future__ import annotations

import json


def subscribe_queue(sns, sqs, topic_arn: str, client_id: str, queue_name: str,
                    statuses: list[str] | None = None) -> dict:
    """Create the queue if needed, let only this topic send to it, subscribe it with raw delivery and a filter policy
    on the client_id (and optionally status) message attributes. Clients never subscribe themselves: that is the
    tenancy boundary (the topic policy refuses other accounts; filter policies are set here, by the operator)."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "JobEventsOnly", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    filter_policy = {"client_id": [client_id]}
    if statuses:
        filter_policy["status"] = list(statuses)
    subscription = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True,
                                 Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(filter_policy)})
    return {"client_id": client_id, "queue_url": queue_url, "queue_arn": queue_arn,
            "subscription_arn": subscription["SubscriptionArn"], "filter_policy": filter_policy}
