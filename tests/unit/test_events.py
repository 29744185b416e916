"""events/*.json are well-formed samples: HTTP API 2.0 requests on the template's routes, a real image, a real job message."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re

import pytest
from PIL import Image

from cxr_core.domain import JobMessage
from cxr_core.request_body import parse_upload

from .template_support import REPO, raw

EVENTS = REPO / "events"
FUNCTION_OF_PREFIX = {"submit": "SubmitFunction", "poll": "PollFunction", "ops": "PollFunction",
                      "infer": "InferFunction"}


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def template_routes() -> dict[str, str]:
    routes = {}
    for name, spec in raw()["Resources"].items():
        for event in (spec.get("Properties") or {}).get("Events", {}).values():
            if spec["Type"] == "AWS::Serverless::Function" and event["Type"] == "HttpApi":
                routes[f"{event['Properties']['Method']} {event['Properties']['Path']}"] = name
    return routes


def http_events() -> list[str]:
    return sorted(p.name for p in EVENTS.glob("*.json") if "routeKey" in load(p.name))


def test_there_is_a_sample_for_every_function_and_every_design_route():
    assert {FUNCTION_OF_PREFIX[name.split("_")[0]] for name in map(lambda p: p.name, EVENTS.glob("*.json"))} == {
        "SubmitFunction", "PollFunction", "InferFunction"}
    covered = {load(name)["routeKey"] for name in http_events()}
    assert covered >= set(template_routes())


@pytest.mark.parametrize("name", http_events())
def test_http_event_is_payload_2_0_on_a_template_route_of_its_function(name):
    event = load(name)
    assert event["version"] == "2.0"
    assert template_routes()[event["routeKey"]] == FUNCTION_OF_PREFIX[name.split("_")[0]]
    method, route_path = event["routeKey"].split(" ", 1)
    context = event["requestContext"]
    assert context["http"]["method"] == method and context["routeKey"] == event["routeKey"]
    stage_prefix = f"/{context['stage']}"
    assert event["rawPath"].startswith(stage_prefix) and context["http"]["path"] == event["rawPath"]
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route_path))
    found = re.fullmatch(pattern, event["rawPath"][len(stage_prefix):])
    assert found and found.groupdict() == event.get("pathParameters", {})
    assert all(key == key.lower() for key in event["headers"])  # HTTP API lower-cases header names
    assert "x-api-key" in event["headers"]


def test_submit_png_carries_a_small_valid_radiograph():
    event = load("submit_png.json")
    data = base64.b64decode(event["body"], validate=True)
    assert event["isBase64Encoded"] is True and event["headers"]["content-type"] == "image/png"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and min(image.size) >= 32 and image.mode == "L"
    assert len(data) == int(event["headers"]["content-length"]) < 16_384


def test_multipart_sample_is_the_seed_clients_form_with_the_same_image():
    event = load("submit_multipart.json")
    upload = parse_upload(event["headers"]["content-type"], base64.b64decode(event["body"]), 10 * 1024 * 1024)
    assert upload.data == base64.b64decode(load("submit_png.json")["body"])


def test_sqs_sample_is_a_job_message_from_the_template_queue_for_the_submitted_image():
    record = load("infer_sqs.json")["Records"][0]
    message = JobMessage.from_dict(json.loads(record["body"]))
    png = base64.b64decode(load("submit_png.json")["body"])
    assert message.image_sha256 == hashlib.sha256(png).hexdigest()
    assert message.image_key == f"images/{message.image_sha256}"
    queue_name = raw()["Resources"]["JobsQueue"]["Properties"]["QueueName"]["Fn::Sub"].replace("${Stage}", "dev")
    assert record["eventSourceARN"].rsplit(":", 1)[-1] == queue_name
    assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"] == "1"


def test_schedule_sample_is_what_the_infer_handler_treats_as_the_recovery_pass():
    event = load("infer_recovery_schedule.json")
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
