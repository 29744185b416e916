"""Issue 25 item 9, the parts with no stack needed: signed MONOCHROME1 refused at submit, a preamble-less 'DICM'
file refused with its reason, and a job already tried shows its attempts and when it is delivered again."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_core.domain import Job, JobStatus
from cxr_core.services.jobs import job_view
from cxr_model import ImageError
from cxr_model.decode import check_image
from tests.dicom_factory import encode_dicom


@pytest.mark.parametrize("dtype", [np.int16, np.int8])
def test_signed_full_depth_monochrome1_is_422_at_submit(dtype):
    pixels = np.random.default_rng(9).integers(-100, 100, (64, 64)).astype(dtype)
    with pytest.raises(ImageError) as refused:
        check_image(encode_dicom(pixels, "ExplicitVRLittleEndian", photometric="MONOCHROME1"))
    assert refused.value.code == "UNDECODABLE_IMAGE" and "signed" in refused.value.message


def test_signed_monochrome1_with_headroom_is_still_accepted():
    pixels = np.random.default_rng(9).integers(0, 2000, (64, 64)).astype(np.int16)
    check_image(encode_dicom(pixels, "ExplicitVRLittleEndian", photometric="MONOCHROME1", bits_stored=12))


def test_dicm_without_its_preamble_is_415_saying_why():
    data = encode_dicom(np.zeros((64, 64), dtype=np.uint8), "ExplicitVRLittleEndian")
    with pytest.raises(ImageError) as refused:
        check_image(data[128:])
    assert refused.value.code == "UNSUPPORTED_MEDIA_TYPE" and "preamble" in refused.value.message


def test_a_job_whose_batch_died_shows_its_attempts_and_when_it_is_delivered_again():
    job = Job("j", JobStatus.IN_PROGRESS, "s" * 64, "k", "m", "2026-12-05T08:00:00Z", "2026-12-05T08:00:01Z",
              started_at="2026-12-05T08:00:01Z", attempts=1)
    view = job_view(job, redelivery_seconds=360)
    assert view["attempts"] == 1 and view["retry_by"].startswith("2026-12-05T08:06:01")
    fresh = Job("k", JobStatus.QUEUED, "s" * 64, "k", "m", "2026-12-05T08:00:00Z", "2026-12-05T08:00:00Z")
    assert "attempts" not in job_view(fresh, 360) and "retry_by" not in job_view(fresh, 360)
