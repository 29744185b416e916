"""The item state machine: submit de-identified, long-poll, build the SR, deliver with backoff; skips and refusals."""
import io

import pydicom
import pytest

from cxr_cli.api import ApiError, Submitted
from cxr_gateway.delivery import DeliveryError, backoff_s
from cxr_gateway.pipeline import Metrics, Pipeline
from cxr_gateway.receiving import ACCEPTED, SKIPPED, Receiver
from cxr_gateway.store import READY, SUBMITTED, Store, new_key
from cxr_model.specs import LABELS
from tests.gateway_support import PHI_VALUES, study
from tests.unit.test_gateway_store import Clock

MODEL = {"name": "densenet121-res224-all", "weights": "real", "weights_sha256": "ab" * 32, "engine": "onnxruntime",
         "preprocess": "exact"}


class FakeApi:
    """The service's public API as the gateway sees it (cxr_cli.api.Client's methods)."""

    def __init__(self, weights="real", refuse=None, fail_job=False):
        self.uploads, self.polls = [], 0
        self.weights, self.refuse, self.fail_job = weights, refuse, fail_job

    def submit(self, data, media_type):
        if self.refuse:
            raise ApiError("POST /v1/jobs: 422 UNDECODABLE_IMAGE: multi-frame", status=422, code="UNDECODABLE_IMAGE")
        self.uploads.append(data)
        return Submitted(201, {"id": "job-1", "status": "QUEUED"})

    def job(self, job_id, wait=None):
        self.polls += 1
        if self.polls == 1:
            return {"id": job_id, "status": "IN_PROGRESS"}
        return {"id": job_id, "status": "FAILED" if self.fail_job else "COMPLETED", "error": "boom"}

    def result(self, job_id):
        return {"job_id": job_id, "output": {label: 0.1 + i / 40 for i, label in enumerate(LABELS)},
                "model": {**MODEL, "weights": self.weights}}


class FlakySender:
    def __init__(self, failures=0):
        self.failures, self.sent = failures, []

    def send(self, data):
        if self.failures:
            self.failures -= 1
            raise DeliveryError("destination down")
        self.sent.append(data)


@pytest.fixture
def clock():
    return Clock()


def make(tmp_path, clock, api=None, sender=None, allow_stand_in=False):
    store = Store(tmp_path / "s.sqlite3", new_key(), ttl_s=3600, clock=clock)
    metrics = Metrics()
    pipeline = Pipeline(store, api or FakeApi(), sender or FlakySender(), metrics, allow_stand_in,
                        retry_base_s=2, retry_max_s=60)
    return store, pipeline, Receiver(store, metrics), metrics


def run_until_idle(store, pipeline, steps=10):
    for _ in range(steps):
        due = store.due(10)
        if not due:
            return
        for item in due:
            pipeline.step(item)


def test_a_frontal_image_is_uploaded_de_identified_scored_and_delivered(tmp_path, clock):
    api, sender = FakeApi(), FlakySender()
    store, pipeline, receiver, metrics = make(tmp_path, clock, api, sender)
    routed = study()
    outcomes = {name: receiver.receive(data) for name, data in routed.items()}
    assert outcomes["frontal"].status == ACCEPTED
    assert {name: o.status for name, o in outcomes.items() if name != "frontal"} == dict.fromkeys(
        ("lateral", "ct", "sr"), SKIPPED)
    run_until_idle(store, pipeline)
    (upload,) = api.uploads
    for value in PHI_VALUES:
        assert value.encode() not in upload
    assert pydicom.dcmread(io.BytesIO(upload)).get("PatientID") is None
    (sent,) = sender.sent
    report = pydicom.dcmread(io.BytesIO(sent))
    assert report.PatientID == "GW-PID-73519"
    assert report.StudyInstanceUID == pydicom.dcmread(io.BytesIO(routed["frontal"])).StudyInstanceUID
    assert store.backlog()["pending"] == 0
    assert metrics.snapshot()["counts"]["delivered"] == 1


def test_delivery_retries_back_off_and_nothing_is_lost(tmp_path, clock):
    sender = FlakySender(failures=3)
    store, pipeline, receiver, _ = make(tmp_path, clock, sender=sender)
    receiver.receive(study()["frontal"])
    run_until_idle(store, pipeline)
    delays = []
    for _ in range(3):
        assert store.backlog()["by_state"][READY] == 1
        (row,) = store.raw_rows()
        next_attempt_at = row[4]
        delays.append(next_attempt_at - clock.now)
        clock.now = next_attempt_at
        run_until_idle(store, pipeline, steps=1)
    assert delays == [2, 4, 8]
    assert len(sender.sent) == 1 and store.backlog()["pending"] == 0


def test_backoff_is_capped():
    assert [backoff_s(n, 2, 60) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]


def test_a_stand_in_result_is_withheld_without_the_flag(tmp_path, clock):
    sender = FlakySender()
    store, pipeline, receiver, metrics = make(tmp_path, clock, FakeApi(weights="random-init"), sender)
    receiver.receive(study()["frontal"])
    run_until_idle(store, pipeline)
    assert sender.sent == [] and store.backlog()["pending"] == 0
    assert metrics.snapshot()["counts"]["withheld_stand_in"] == 1


def test_with_the_flag_it_is_delivered_and_marked(tmp_path, clock):
    sender = FlakySender()
    store, pipeline, receiver, _ = make(tmp_path, clock, FakeApi(weights="random-init"), sender, allow_stand_in=True)
    receiver.receive(study()["frontal"])
    run_until_idle(store, pipeline)
    (sent,) = sender.sent
    assert "STAND-IN WEIGHTS (random-init)" in pydicom.dcmread(io.BytesIO(sent)).SeriesDescription


def test_a_refused_image_is_skipped_with_the_service_reason_and_a_failed_job_is_dropped(tmp_path, clock):
    store, pipeline, receiver, metrics = make(tmp_path, clock, FakeApi(refuse=True))
    receiver.receive(study()["frontal"])
    run_until_idle(store, pipeline)
    assert store.backlog()["pending"] == 0
    assert any(reason.startswith("the service refused the image") for reason in metrics.snapshot()["skipped_by_reason"])
    store, pipeline, receiver, metrics = make(tmp_path / "b", clock, FakeApi(fail_job=True))
    receiver.receive(study()["frontal"])
    run_until_idle(store, pipeline)
    assert store.backlog()["pending"] == 0 and metrics.snapshot()["counts"]["jobs_failed"] == 1


def test_a_service_outage_is_retried_not_dropped(tmp_path, clock):
    class Down(FakeApi):
        def submit(self, data, media_type):
            raise ApiError("cannot reach http://127.0.0.1:1: connection failed")

    store, pipeline, receiver, _ = make(tmp_path, clock, Down())
    receiver.receive(study()["frontal"])
    run_until_idle(store, pipeline)
    assert store.backlog()["by_state"]["received"] == 1
    (row,) = store.raw_rows()
    assert row[5] == 1 and "connection failed" in row[7]
    assert SUBMITTED not in [item.state for item in store.due(10)]


def test_an_instance_that_does_not_open_is_never_uploaded_nor_retried(tmp_path, clock):
    api = FakeApi()
    store, pipeline, receiver, metrics = make(tmp_path, clock, api)
    assert receiver.receive(study()["frontal"]).status == ACCEPTED
    (path,) = store.spool.iterdir()
    sealed = bytearray(path.read_bytes())
    sealed[-1] ^= 1  # the tag no longer matches
    path.write_bytes(bytes(sealed))
    (item,) = store.due(10)
    pipeline.step(item)
    assert api.uploads == [] and metrics.snapshot()["counts"]["unopenable"] == 1
    assert "retries_received" not in metrics.snapshot()["counts"] and store.due(10) == []  # parked until the TTL
