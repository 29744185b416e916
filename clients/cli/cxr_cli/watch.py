"""`cxr watch`: job events from an SQS queue subscribed to the service's topic, one JSON line each, deduplicated."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Iterator

WAIT_S = 20  # SQS long poll


def parse_event(body: str) -> dict | None:
    """The event itself (raw delivery) or inside an SNS envelope (raw delivery off); None for anything else."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
            message = json.loads(message["Message"])
    except (ValueError, TypeError):
        return None
    return message if isinstance(message, dict) and "event_id" in message else None


def events(sqs, queue_url: str, timeout_s: float | None, clock: Callable[[], float] = time.monotonic) -> Iterator[dict]:
    """Each event once: SNS delivers at least once and a job's event may be re-published on redelivery; the
    event_id is the same each time, so repeats are dropped (and deleted) here."""
    seen: set[str] = set()
    deadline = None if timeout_s is None else clock() + timeout_s
    while deadline is None or clock() < deadline:
        wait = WAIT_S if deadline is None else max(0, min(WAIT_S, int(deadline - clock())))
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get(
            "Messages", [])
        for message in messages:
            event = parse_event(message["Body"])
            if event is not None and event["event_id"] not in seen:
                seen.add(event["event_id"])
                yield event
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def watch(queue_url: str, aws_endpoint: str | None, count: int | None, timeout_s: float | None, as_json: bool) -> int:
    import boto3  # only this command needs AWS credentials (the queue's owner's)

    sqs = boto3.client("sqs", endpoint_url=aws_endpoint or os.environ.get("AWS_ENDPOINT_URL") or None,
                       region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    received = 0
    for event in events(sqs, queue_url, timeout_s):
        if as_json:
            print(json.dumps(event), flush=True)
        else:
            detail = (f"top label {event['result'].get('top_label')}" if event.get("result")
                      else f"error: {event.get('error')}")
            print(f"{event.get('finished_at')}  job {event['job_id']}  {event['status']}"
                  f"{' (cached)' if event.get('cached') else ''}  {detail}", flush=True)
        received += 1
        if count is not None and received >= count:
            break
    if count is not None and received < count:
        print(f"cxr: error: {received} of {count} events within {timeout_s:g}s", file=sys.stderr)
        return 4
    return 0
