"""Issue 25 item 9 against the running stack: a signed full-depth MONOCHROME1 DICOM is refused at submit (not 201
then FAILED), a preamble-less 'DICM' file is refused saying why (decided: DICOM PS3.10 needs the preamble)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.dicom_factory import encode_dicom

from .conftest import assert_json_error

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
