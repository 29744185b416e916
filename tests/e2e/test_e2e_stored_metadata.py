"""Issue 25 item 3 against the running stack: what the bucket holds for a PNG or JPEG upload carries no metadata
segment (text, EXIF, XMP, comments, trailing bytes); the job still completes; the cache key is the upload's SHA-256."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from blake3 import blake3
from PIL import Image

from tests.unit.test_strip import PHI, jpeg_with_metadata, png_with_metadata

from .conftest import wait_for_terminal_status

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_the_stored_image_keeps_pixels_and_no_metadata(local_stack, http, kind):
    array = np.random.default_rng(hash(kind) % 1000).integers(0, 255, (256, 256), dtype=np.uint8)
    upload = png_with_metadata(array) if kind == "png" else jpeg_with_metadata(array)
    response = http.post(f"{local_stack.url}/v1/jobs", data=upload, headers={"Content-Type": f"image/{kind}"},
                         timeout=60)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    tables = local_stack.info["resources"]["tables"]
    item = local_stack.aws("dynamodb").get_item(TableName=tables["JobsTable"], Key={"job_id": {"S": job_id}})["Item"]
    bucket = next(iter(local_stack.info["resources"]["buckets"].values()))
    stored = local_stack.aws("s3").get_object(Bucket=bucket, Key=item["image_key"]["S"])["Body"].read()
    assert PHI in upload and PHI not in stored
    assert "blake3:" + blake3(stored).hexdigest() == item["stored_digest"]["S"]  # what infer checks
    assert item["image_sha256"]["S"] == hashlib.sha256(upload).hexdigest()  # the cache still keys on the upload
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), np.asarray(Image.open(io.BytesIO(upload))))
    status, _ = wait_for_terminal_status(http, local_stack.url, job_id)
    assert status["status"] == "COMPLETED", status
