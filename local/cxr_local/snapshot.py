"""The embedded moto's state kept across a clean restart: on stop, every template table's items, bucket's objects,
queue's waiting messages and topic's subscriptions are written to a folder through the AWS API; on the next start
(unless --fresh) they are put back. A job in flight at the stop is QUEUED/IN_PROGRESS in its table, and the
recovery pass re-enqueues it (StuckJobSeconds)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .template import StackTemplate

MANIFEST = "manifest.json"


def save(session: Any, template: StackTemplate, folder: Path) -> dict:
    """Write the snapshot next to `folder` and swap it in whole (a stop killed midway leaves the previous one)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o700)  # jobs, keys' hashes and stored images: the owner's alone
    counts: dict[str, dict[str, int]] = {"tables": {}, "buckets": {}, "queues": {}, "topics": {}}
    dynamodb = session.client("dynamodb")
    for name in template.tables():
        items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=name) for item in page["Items"]]
        _write_lines(partial / "dynamodb" / f"{name}.jsonl", items)
        counts["tables"][name] = len(items)
    s3 = session.client("s3")
    for bucket in template.buckets():
        index = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                got = s3.get_object(Bucket=bucket, Key=entry["Key"])
                path = partial / "s3" / bucket / str(len(index))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(got["Body"].read())
                index.append({"key": entry["Key"], "content_type": got.get("ContentType"),
                              "metadata": got.get("Metadata") or {}})
        _write_lines(partial / "s3" / f"{bucket}.jsonl", index)
        counts["buckets"][bucket] = len(index)
    sqs = session.client("sqs")
    for name, queue in template.queues().items():
        messages = _drain(sqs, queue["url"])
        _write_lines(partial / "sqs" / f"{name}.jsonl", messages)
        counts["queues"][name] = len(messages)
    sns = session.client("sns")
    for arn in template.topics():
        subscriptions = [{"Protocol": s["Protocol"], "Endpoint": s["Endpoint"]}
                         for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                         for s in page["Subscriptions"]]
        _write_lines(partial / "sns" / f"{arn.rsplit(':', 1)[-1]}.jsonl", subscriptions)
        counts["topics"][arn] = len(subscriptions)
    manifest = {"saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "counts": counts}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return manifest


def restore(session: Any, template: StackTemplate, folder: Path) -> dict | None:
    """Put a snapshot back into freshly created resources; None when there is none."""
    if not (folder / MANIFEST).is_file():
        return None
    manifest = json.loads((folder / MANIFEST).read_text())
    dynamodb = session.client("dynamodb")
    for name in template.tables():
        items = _read_lines(folder / "dynamodb" / f"{name}.jsonl")
        for start in range(0, len(items), 25):
            pending = {name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    s3 = session.client("s3")
    for bucket in template.buckets():
        for number, entry in enumerate(_read_lines(folder / "s3" / f"{bucket}.jsonl")):
            extra = {"ContentType": entry["content_type"]} if entry.get("content_type") else {}
            s3.put_object(Bucket=bucket, Key=entry["key"], Body=(folder / "s3" / bucket / str(number)).read_bytes(),
                          Metadata=entry.get("metadata") or {}, **extra)
    sqs = session.client("sqs")
    for name, queue in template.queues().items():
        for message in _read_lines(folder / "sqs" / f"{name}.jsonl"):
            sqs.send_message(QueueUrl=queue["url"], **message)
    sns = session.client("sns")
    for arn in template.topics():
        for subscription in _read_lines(folder / "sns" / f"{arn.rsplit(':', 1)[-1]}.jsonl"):
            sns.subscribe(TopicArn=arn, **subscription)
    return manifest


def restore_at_start(session: Any, template: StackTemplate, folder: Path, fresh: bool,
                     say: Callable[[str], None]) -> None:
    if fresh:
        say(f"--fresh: starting empty; the snapshot in {folder} is replaced at the next clean stop")
        return
    manifest = restore(session, template, folder)
    if manifest:
        say(f"restored the state of the clean stop at {manifest['saved_at']} from {folder}: {_summary(manifest)} "
            f"(--fresh starts empty)")


def save_at_stop(session: Any, template: StackTemplate, folder: Path, say: Callable[[str], None]) -> None:
    try:
        say(f"saved the state to {folder}: {_summary(save(session, template, folder))}")
    except Exception as error:  # noqa: BLE001 - stopping goes on; the previous snapshot stays
        say(f"WARNING: could not save the state to {folder} ({error}); the previous snapshot stays")


def _summary(manifest: dict) -> str:
    counts = manifest["counts"]
    return (f"{sum(counts['tables'].values())} items, {sum(counts['buckets'].values())} objects, "
            f"{sum(counts['queues'].values())} queued messages")


def _drain(sqs: Any, url: str) -> list[dict]:
    """Every visible message of a queue, as send_message arguments (at a stop nothing else receives them)."""
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            kept = {"MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                kept["MessageAttributes"] = {name: {k: v for k, v in value.items() if not k.endswith("ListValues")}
                                             for name, value in message["MessageAttributes"].items()}
            messages.append(kept)


def _write_lines(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records))


def _read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
