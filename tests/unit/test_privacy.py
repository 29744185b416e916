"""DICOM de-identification: identity gone, pixels and decodability kept."""
import io

import numpy as np
import pydicom

from cxr_model import check_image
from cxr_model.privacy import IDENTIFYING_KEYWORDS, deidentify_dicom
from tests.images import XRAYS


def test_identifying_attributes_and_private_tags_are_removed_and_pixels_kept():
    for name in ("siim_pneumothorax_sample.dcm", "Fake_MONOHR1.dcm"):
        original = (XRAYS / name).read_bytes()
        source = pydicom.dcmread(io.BytesIO(original))
        source.add_new(0x00091001, "LO", "private secret")  # a private tag, as scanners write them
        buffer = io.BytesIO()
        source.save_as(buffer)
        cleaned = pydicom.dcmread(io.BytesIO(deidentify_dicom(buffer.getvalue())))
        assert not [k for k in IDENTIFYING_KEYWORDS if k in cleaned]
        assert 0x00091001 not in cleaned
        assert str(source.PatientID).encode() not in deidentify_dicom(buffer.getvalue())
        assert np.array_equal(cleaned.pixel_array, source.pixel_array)
        assert cleaned.PhotometricInterpretation == source.PhotometricInterpretation
        assert check_image(deidentify_dicom(original)).format == "dicom"
