"""What the stack tells its user once ready (loudly so when the weights are random) and its ready file."""
from __future__ import annotations

import json
import os
from pathlib import Path

from cxr_model.notice import INTENDED_USE


def say(message: str) -> None:
    print(f"[cxr_local] {message}", flush=True)


def announce(info: dict, ready_file: Path | None) -> None:
    weights = info["weights"]
    if weights["random_init"] or weights.get("kind") != "real":
        banner = "!" * 78
        say(banner)
        say("WEIGHTS: RANDOM-INIT - scores are meaningless, NOT FOR CLINICAL USE" if weights["random_init"] else
            "WEIGHTS: PROVIDED, UNVERIFIED - not torchxrayvision's published file, NOT VALIDATED FOR CLINICAL USE")
        say(f"  ({weights['detail']})")
        say(banner)
    else:
        say(f"weights: {weights['detail']}")
    say(INTENDED_USE)
    kind = "Lambda execution environments at most" if info.get("infer_path") == "lambda" else "worker process(es)"
    say(f"infer path {info.get('infer_path') or '?'}: {info['workers']} {kind}"
        + ("" if info["workers"] else " (none started: jobs stay QUEUED)"))
    say(f"routes: {', '.join(info['routes'])}")
    if info["api_key"]:
        say(f"API key (operator, send as x-api-key): {info['api_key']}")
    for name, path in info.get("logs", {}).items():
        say(f"{name} log: {path}")
    if info.get("events_topic_arn"):
        # the embedded moto accepts only the stack's own identity: both commands take it from the ready file
        ready = ready_file or "READY_FILE"
        say(f"job events (SNS): {info['events_topic_arn']}; to receive one client's events in an SQS queue:")
        say(f"  python -m cxr_core.admin --stack {ready} events subscribe --client local-dev --queue my-events"
            "    # prints the queue_url")
        say(f"  eval \"$(python -m cxr_local env-json --ready-file {ready} --credentials)\"; cxr watch --aws-endpoint {info['moto_endpoint']}"
            " --queue-url QUEUE_URL    # prints each event as a JSON line")
    if info["health_status"] != 200:
        say(f"WARNING: GET /v1/ops/health answered {info['health_status']}")
    if info.get("ready_status") != 200:
        say(f"WARNING: readiness not checked: GET /v1/ops/ready answered {info.get('ready_status')}")
    endpoint = ("AWS endpoint " if info.get("external_endpoint") else "moto ") + info["moto_endpoint"]
    say(f"ready in {info['ready_seconds']:.2f}s - API listening on {info['url']} ({endpoint})")
    if ready_file:
        ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = ready_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        # it holds the stack's AWS identity: readable by its owner only
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(json.dumps(info, indent=2))
        tmp.replace(ready_file)  # atomic: a reader never sees half a file
