"""Issue 25 item 9 against the running stack: a signed full-depth MONOCHROME1 DICOM is refused at submit (not 201
then FAILED), a preamble-less 'DICM' file is refused saying why (decided: DICOM PS3.10 needs the preamble), and a
job whose batch died shows its attempts and when it is retried."""
from __future__ import annotations

import numpy as np
import pytest
import requests

from cxr_local.template import StackTemplate
from tests.dicom_factory import encode_dicom
from tests.images import perturbed_png

from .conftest import REPO, assert_json_error, start_stack

pytestmark = pytest.mark.e2e


def test_signed_16_bit_monochrome1_is_422_at_submit(local_stack, http):
    pixels = np.random.default_rng(25).integers(-1000, 1000, (256, 256)).astype(np.int16)
    data = encode_dicom(pixels, "ExplicitVRLittleEndian", photometric="MONOCHROME1")
    response = http.post(f"{local_stack.url}/v1/jobs", data=data, headers={"Content-Type": "application/dicom"},
                         timeout=60)
    assert_json_error(response, 422, "UNDECODABLE_IMAGE")


def test_dicm_without_preamble_is_415_naming_the_preamble(local_stack, http):
    data = encode_dicom(np.zeros((256, 256), dtype=np.uint8), "ExplicitVRLittleEndian")[128:]
    response = http.post(f"{local_stack.url}/v1/jobs", data=data, headers={"Content-Type": "application/dicom"},
                         timeout=60)
    assert "preamble" in assert_json_error(response, 415)["error"]


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory):
    """No infer workers: a submitted job stays where a test puts it."""
    stack = start_stack(tmp_path_factory.mktemp("idle"), workers=0)
    yield stack
    assert stack.stop() == 0


def test_a_job_whose_batch_died_shows_attempts_and_when_it_is_retried(idle_stack):
    headers = idle_stack.auth_headers
    job = requests.post(f"{idle_stack.url}/v1/jobs", data=perturbed_png(2509),
                        headers={"Content-Type": "image/png", **headers}, timeout=60).json()
    table = idle_stack.info["resources"]["tables"]["JobsTable"]
    started = "2026-01-01T00:00:00Z"
    # what a batch that died after claiming the job leaves behind: IN_PROGRESS, one attempt, a lease
    idle_stack.aws("dynamodb").update_item(
        TableName=table, Key={"job_id": {"S": job["id"]}},
        UpdateExpression="SET #s = :s, attempts = :a, started_at = :t, claim_token = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "IN_PROGRESS"}, ":a": {"N": "1"}, ":t": {"S": started},
                                   ":c": {"S": "dead-batch"}})
    view = requests.get(f"{idle_stack.url}/v1/jobs/{job['id']}", headers=headers, timeout=30).json()
    visibility = int(StackTemplate(REPO / "template.yaml").function("PollFunction")
                     .environment["VISIBILITY_TIMEOUT_SECONDS"])
    assert view["status"] == "IN_PROGRESS" and view["attempts"] == 1
    assert view["retry_by"].startswith(f"2026-01-01T00:{visibility // 60:02d}:{visibility % 60:02d}"), view
