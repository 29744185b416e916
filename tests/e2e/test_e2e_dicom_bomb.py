"""Issue 25 item 2 against the running stack: a deflate bomb is refused at submit, inline and through a presigned
upload, quickly and without the submit function inflating it."""
from __future__ import annotations

import time

import pytest
import requests

from tests.unit.test_dicom_inflate import deflate_bomb

from .conftest import assert_json_error

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return deflate_bomb(400 << 20)  # ~400 KB on the wire, 400 MB inflated


def test_inline_deflate_bomb_is_422(local_stack, http, bomb):
    began = time.monotonic()
    response = http.post(f"{local_stack.url}/v1/jobs", data=bomb, headers={"Content-Type": "application/dicom"},
                         timeout=60)
    assert_json_error(response, 422, "UNDECODABLE_IMAGE")
    assert "inflates past" in response.json()["error"]
    assert time.monotonic() - began < 5


def test_presigned_deflate_bomb_is_422_at_claim(local_stack, http, bomb):
    url = local_stack.url
    grant = http.post(f"{url}/v1/uploads", json={"content_type": "application/dicom", "size": len(bomb)}, timeout=30)
    assert grant.status_code == 201, grant.text
    grant = grant.json()
    put = requests.put(grant["url"], data=bomb, headers=grant["headers"], timeout=60)
    assert put.status_code == 200, put.text
    response = http.post(f"{url}/v1/jobs", json={"upload_id": grant["upload_id"]}, timeout=60)
    assert_json_error(response, 422, "UNDECODABLE_IMAGE")
