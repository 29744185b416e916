"""What the local stack prints at start: the job-events hint works against a moto that takes only its identity."""
import json
from pathlib import Path

from cxr_local import report


def test_the_events_hint_takes_the_stacks_identity_from_its_ready_file(tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr(report, "say", lines.append)
    ready = tmp_path / "ready.json"
    info = {"weights": {"random_init": True, "kind": "random-init", "sha256": "ab" * 32, "detail": "stand-in"},
            "infer_path": "lambda", "workers": 1, "routes": ["GET /v1/ops/health"], "api_key": "k",
            "events_topic_arn": "arn:aws:sns:us-east-1:123456789012:cxr-local-job-events", "health_status": 200,
            "ready_status": 200, "moto_endpoint": "http://127.0.0.1:4566", "url": "http://127.0.0.1:8080",
            "ready_seconds": 1.0}
    report.announce(info, ready)
    hint = "\n".join(line for line in lines if "events subscribe" in line or "cxr watch" in line)
    assert f"python -m cxr_core.admin --stack {ready} events subscribe" in hint
    assert f"env-json --ready-file {ready} --credentials" in hint and "testing" not in hint
    assert json.loads(Path(ready).read_text())["events_topic_arn"] == info["events_topic_arn"]
