"""Operator commands: `python -m cxr_core.admin keys create|revoke|list`, `... events subscribe`, `... audit JOB_ID`."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

from cxr_core.config import settings


def use_stack(ready_file: str) -> None:
    """Run this command against a local stack (`python -m cxr_local --ready-file F`): its endpoint, its tables and
    the AWS identity its moto endpoint requires become this process's environment."""
    with open(ready_file, encoding="utf-8") as handle:
        os.environ.update(json.load(handle)["aws_env"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxr_core.admin", description=__doc__)
    parser.add_argument("--stack", metavar="READY_FILE", default=os.environ.get("CXR_STACK_FILE"),
                        help="a local stack's ready file (python -m cxr_local --ready-file): use its endpoint, tables "
                             "and AWS identity (default $CXR_STACK_FILE; without it: the AWS environment as it is)")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key for a client and print it once (only its hash is stored)")
    create.add_argument("--client", required=True, help="client id: jobs are visible to this client only")
    create.add_argument("--label", default=None)
    create.add_argument("--operator", action="store_true", help="may read /v1/ops/metrics and /v1/ops/dlq")
    revoke = keys.add_parser("revoke", help="revoke a key (by the key or its SHA-256)")
    revoke.add_argument("key")
    keys.add_parser("list", help="list keys (hashes only)")
    events = commands.add_parser("events", help="job events (SNS)").add_subparsers(dest="action", required=True)
    subscribe = events.add_parser("subscribe", help="subscribe a client's SQS queue (created if missing) to its "
                                                    "own job events; prints the queue URL for `cxr watch`")
    subscribe.add_argument("--client", required=True, help="client id: the filter policy passes only its events")
    subscribe.add_argument("--queue", required=True, metavar="NAME", help="SQS queue name")
    subscribe.add_argument("--status", action="append", choices=("COMPLETED", "FAILED"),
                           help="only these statuses (repeatable; default both)")
    audit = commands.add_parser("audit", help="print a job's audit history: every access to it, oldest first "
                                              "(the audit log group on AWS, the stack's audit file locally)")
    audit.add_argument("job_id", metavar="JOB_ID")
    audit.add_argument("--json", action="store_true", help="one JSON line per access")
    args = parser.parse_args(argv)
    if args.stack:
        use_stack(args.stack)
    config = settings()
    if args.command == "events":
        return _subscribe(args, config)
    if args.command == "audit":
        return _audit(args, config)
    from cxr_core.auth import hash_key
    from cxr_core.bootstrap import Runtime

    keys = Runtime(config).api_keys
    if args.action == "create":
        api_key = keys.create(args.client, label=args.label, operator=args.operator)
        print(json.dumps({"client_id": args.client, "api_key": api_key, "key_hash": hash_key(api_key)}))
    elif args.action == "revoke":
        if not keys.revoke(args.key):
            print("no such key", file=sys.stderr)
            return 1
        print("revoked")
    else:
        print(json.dumps(keys.list(), indent=2))
    return 0


def _audit(args, config) -> int:
    from cxr_core.bootstrap import Runtime

    if not re.fullmatch(r"[0-9A-Za-z-]{1,64}", args.job_id):
        print(f"not a job id: {args.job_id!r}", file=sys.stderr)
        return 2
    history = Runtime(config).audit.history(args.job_id)
    if not history:
        print(f"no audit lines for job {args.job_id}", file=sys.stderr)
        return 1
    for entry in history:
        if args.json:
            print(json.dumps(entry))
        else:
            print(f"{entry['time']}  {entry['route']:<26} {entry['outcome']}  client={entry.get('client_id')}"
                  f"{' (operator)' if entry.get('operator') else ''}  ip={entry.get('source_ip', '-')}")
    return 0


def _subscribe(args, config) -> int:
    from cxr_core.bootstrap import Runtime
    from cxr_core.subscriptions import subscribe_queue

    if not config.events_topic_arn:
        print("EVENTS_TOPIC_ARN is not set (the stack output JobEventsTopicArn)", file=sys.stderr)
        return 1
    rt = Runtime(config)
    print(json.dumps(subscribe_queue(rt.sns, rt.sqs, config.events_topic_arn, args.client, args.queue, args.status)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
