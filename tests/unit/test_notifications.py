"""Job events: one per final transition (both infer outcomes, the recovery pass, a cache hit), after the state is
durable, with an id that stays the same on a re-publish, and attributes a subscription can filter on."""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from cxr_core.domain import JobStatus, Upload
from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
from cxr_core.services.notifications import job_event
from cxr_core.services.recovery import recover_stuck_jobs
from cxr_core.services.submit import SubmitDeps, submit_image
from cxr_model.privacy import deidentify_dicom
from tests.fakes import (FakePredictor, InMemoryImageStore, InMemoryJobStore, InMemoryQueue, RecordingPublisher,
                         fake_check_image)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def world():
    jobs, images, queue, events = InMemoryJobStore(), InMemoryImageStore(), InMemoryQueue(), RecordingPublisher()
    submit = SubmitDeps(jobs=jobs, images=images, queue=queue, model_id="m@1", check_image=fake_check_image,
                        deidentify_dicom=deidentify_dicom, events=events)
    infer = InferDeps(jobs=jobs, images=images, predictor=FakePredictor(poison=PNG + b"POISON"),
                      executor=ThreadPoolExecutor(2), max_receive_count=3, lease_seconds=60, events=events)
    return jobs, queue, events, submit, infer


def _submit(world, payload: bytes, client: str = "hospital-a") -> InboundMessage:
    jobs, queue, events, submit, infer = world
    outcome = submit_image(Upload(PNG + payload), submit, client)
    message = queue.messages.pop()
    return InboundMessage(f"m-{outcome.job.job_id}", json.dumps(message.to_dict()))


def test_completion_publishes_one_event_with_the_result_after_the_job_is_stored(world):
    jobs, queue, events, submit, infer = world
    message = _submit(world, b"a")
    published_while_stored = []
    original = events.publish
    events.publish = lambda event, attrs: (published_while_stored.append(jobs.get_job(event["job_id"]).status),
                                           original(event, attrs))
    report = process_batch([message], infer)
    [(event, attributes)] = events.events
    job_id = report.completed_jobs[0]
    assert published_while_stored == [JobStatus.COMPLETED]  # durable first, announced second
    assert event["event_id"] == f"{job_id}:COMPLETED" and event["type"] == "job.completed"
    assert (event["job_id"], event["client_id"], event["status"]) == (job_id, "hospital-a", "COMPLETED")
    assert event["result"]["job_id"] == job_id and set(event["result"]["output"]) == {"A", "B"}
    assert event["model"] == infer.predictor.identity and event["model_id"] == "m@1"
    assert attributes == {"client_id": "hospital-a", "status": "COMPLETED", "event_type": "job.completed"}


def test_final_failure_publishes_a_failed_event_with_the_reason(world):
    jobs, queue, events, submit, infer = world
    message = _submit(world, b"POISON")
    process_batch([message], infer)
    assert events.events == []  # a retry is not a final state
    message.receive_count = 3
    process_batch([message], infer)
    [(event, attributes)] = events.events
    assert event["status"] == "FAILED" and "result" not in event
    # a non-image error shows a fixed reason: its message and class stay in the log (issue 25 item 9)
    assert event["error"].endswith("the image could not be prepared for the model") and "poison" not in event["error"]
    assert attributes["status"] == "FAILED" and event["event_id"].endswith(":FAILED")


def test_a_redelivery_republishes_the_same_event_id(world):
    jobs, queue, events, submit, infer = world
    message = _submit(world, b"a")
    process_batch([message], infer)
    again = process_batch([message], infer)
    assert again.succeeded == [message.message_id]
    assert [event["event_id"] for event, _ in events.events] == [events.events[0][0]["event_id"]] * 2


def test_an_unreachable_topic_leaves_the_message_for_redelivery_and_never_undoes_the_job(world):
    jobs, queue, events, submit, infer = world
    message = _submit(world, b"a")
    events.fail = True
    report = process_batch([message], infer)
    job_id = report.completed_jobs[0]
    assert jobs.get_job(job_id).status is JobStatus.COMPLETED
    assert report.failed == [message.message_id] and report.retry_after[message.message_id] >= 1
    events.fail = False
    message.receive_count = 2
    retry = process_batch([message], infer)
    assert retry.succeeded == [message.message_id] and events.events[0][0]["event_id"] == f"{job_id}:COMPLETED"


def test_recovery_announces_the_job_it_fails(world):
    jobs, queue, events, submit, infer = world
    job_id = json.loads(_submit(world, b"abandoned").body)["job_id"]
    for attempt in range(3):
        jobs.tokens.pop(job_id, None)
        jobs.claim_jobs([job_id], f"dead-{attempt}", -1)
    recover_stuck_jobs(jobs, queue, older_than_seconds=-1, max_attempts=3, events=events)
    [(event, attributes)] = events.events
    assert event["job_id"] == job_id and event["status"] == "FAILED" and "abandoned" in event["error"]


@pytest.mark.parametrize(("scope", "client"), [("client", "hospital-a"), ("global", "hospital-b")])
def test_a_cache_hit_is_a_completed_job_and_announced_as_cached(world, scope, client):
    jobs, queue, events, submit, infer = world
    submit.cache_scope = scope  # hospital-a uploads first; in global scope hospital-b's upload is a hit too
    process_batch([_submit(world, b"same")], infer)
    hit = submit_image(Upload(PNG + b"same"), submit, client)
    assert hit.job.status is JobStatus.COMPLETED
    event, attributes = events.events[-1]
    assert event["job_id"] == hit.job.job_id and event["cached"] is True and attributes["client_id"] == client


def test_the_event_is_json_and_names_no_image_bytes(world):
    jobs, queue, events, submit, infer = world
    process_batch([_submit(world, b"a")], infer)
    job = jobs.get_job(events.events[0][0]["job_id"])
    body, _ = job_event(job)
    assert json.loads(json.dumps(body)) == body and "image_key" not in body
