"""Writes the sample events in this folder: HTTP API (payload 2.0) requests for submit/poll, SQS and schedule for infer.

Run: python events/generate.py   (uses Pillow and one sample radiograph; output is deterministic)
Use: python -m cxr_local invoke SubmitFunction -e events/submit_png.json   (no Docker; against the running local
     stack), or sam local invoke ... --env-vars .cxr_local/env.json (Docker). The requests carry the key the local
     stack registers and prints (cxr_local_dev_key on loopback); CXR_EVENTS_API_KEY=<key> writes another.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = Path(os.environ.get("CXR_SAMPLES_DIR", HERE.parents[1] / "shared" / "data" / "xrays")) / "00000001_000.png"
STAGE, REGION, ACCOUNT, API_ID = "dev", "us-east-1", "123456789012", "a1b2c3d4e5"
TIME_EPOCH_MS = 1796032800000  # 2026-11-30T10:00:00Z, fixed so the files do not change on every run
JOB_ID = "3f6c1c8e-2d4b-4f7e-9a51-0c8f2b7d6e14"
API_KEY = os.environ.get("CXR_EVENTS_API_KEY", "cxr_local_dev_key")  # cxr_local.stack.LOCAL_DEV_API_KEY
MODEL_ID = "densenet121-res224-all@0000000000000000"


def tiny_png() -> bytes:
    """A 64x64 8-bit grey chest radiograph (downscaled sample), a few KB: valid, decodable, above the 32 px floor."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(SAMPLE).convert("L").resize((64, 64), Image.Resampling.LANCZOS).save(buffer, format="PNG",
                                                                                     optimize=True)
    return buffer.getvalue()


def http_event(method: str, route_path: str, path: str, body: bytes | None = None, content_type: str | None = None,
               path_parameters: dict | None = None, text_body: bool = False) -> dict:
    raw_path = f"/{STAGE}{path}"
    headers = {"accept": "application/json", "host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
               "user-agent": "curl/8.5.0", "x-api-key": API_KEY, "x-forwarded-proto": "https"}
    if body is not None:
        headers.update({"content-type": content_type, "content-length": str(len(body))})
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route_path}",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": API_ID, "domainName": headers["host"], "domainPrefix": API_ID,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10",
                     "userAgent": "curl/8.5.0"},
            "requestId": hashlib.sha256(f"{method}{path}".encode()).hexdigest()[:16],
            "routeKey": f"{method} {route_path}", "stage": STAGE,
            "time": "30/Nov/2026:10:00:00 +0000", "timeEpoch": TIME_EPOCH_MS,
        },
        "isBase64Encoded": body is not None and not text_body,  # API Gateway passes JSON bodies as text
    }
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = body.decode() if text_body else base64.b64encode(body).decode()
    return event


def multipart(field: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = "----cxrSampleBoundary7MA4YWxkTrZu0gW"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def sqs_event(png: bytes) -> dict:
    digest = hashlib.sha256(png).hexdigest()
    body = json.dumps({"job_id": JOB_ID, "image_key": f"images/{digest}", "image_sha256": digest,
                       "model_id": MODEL_ID})
    return {"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(TIME_EPOCH_MS),
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": str(TIME_EPOCH_MS + 40)},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:cxr-{STAGE}-jobs",
        "awsRegion": REGION,
    }]}


def schedule_event() -> dict:
    return {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT, "time": "2026-11-30T10:00:00Z", "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/cxr-{STAGE}-recovery"], "detail": {}}


def events() -> dict[str, dict]:
    png = tiny_png()
    form, form_type = multipart("image", "chest.png", "image/png", png)
    job = {"id": JOB_ID}
    return {
        "submit_png.json": http_event("POST", "/v1/jobs", "/v1/jobs", png, "image/png"),
        "submit_multipart.json": http_event("POST", "/v1/jobs", "/v1/jobs", form, form_type),
        "submit_upload.json": http_event("POST", "/v1/uploads", "/v1/uploads",
                                         json.dumps({"content_type": "image/png", "size": len(png),
                                                     "sha256": hashlib.sha256(png).hexdigest()}).encode(),
                                         "application/json", text_body=True),
        "poll_get_job.json": http_event("GET", "/v1/jobs/{id}", f"/v1/jobs/{JOB_ID}", path_parameters=job),
        "poll_get_result.json": http_event("GET", "/v1/jobs/{id}/result", f"/v1/jobs/{JOB_ID}/result",
                                           path_parameters=job),
        "poll_list_jobs.json": http_event("GET", "/v1/jobs", "/v1/jobs"),
        "poll_get_heatmap.json": http_event("GET", "/v1/jobs/{id}/heatmap", f"/v1/jobs/{JOB_ID}/heatmap",
                                            path_parameters=job),
        "submit_list_models.json": http_event("GET", "/v1/models", "/v1/models"),
        "submit_delete_job.json": http_event("DELETE", "/v1/jobs/{id}", f"/v1/jobs/{JOB_ID}", path_parameters=job),
        "ops_health.json": http_event("GET", "/v1/ops/health", "/v1/ops/health"),
        "ops_metrics.json": http_event("GET", "/v1/ops/metrics", "/v1/ops/metrics"),
        "ops_dlq.json": http_event("GET", "/v1/ops/dlq", "/v1/ops/dlq"),
        "ops_ready.json": http_event("GET", "/v1/ops/ready", "/v1/ops/ready"),
        "infer_sqs.json": sqs_event(png),
        "infer_recovery_schedule.json": schedule_event(),
    }


def main() -> int:
    for name, event in events().items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n")
        print(HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
