"""DICOM de-identification against the PS3.15 basic profile table: every listed attribute, top level and nested."""
import io

import numpy as np
import pydicom
import pytest
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as ps315  # the basic profile, 2026c
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cxr_model import check_image
from cxr_model.privacy import KEPT_KEYWORDS, deidentify_dicom
from tests.images import XRAYS

PHI = "PHI-SECRET"
_TEXT = {"DA": "20200101", "TM": "120000", "DT": "20200101120000", "DS": "1.5", "IS": "7", "AS": "045Y",
         "UI": "1.2.826.0.1.3680043.2.1143.999", "CS": "PHISECRET", "AE": "PHISECRET"}
_NUMBERS = ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV")
_BYTES = ("OB", "OW", "OF", "OD", "OL", "OV", "UN")
# (group, element) pairs, and (group, element, group mask, element mask) for repeating groups (overlays 60xx,
# curves 50xx): those are tried in their first group, with the curve group's data element for a masked element
PROFILE_TAGS = sorted({pydicom.tag.Tag(entry[0], entry[1] if len(entry) == 2 or entry[3] else 0x3000)
                       for entry in ps315.ALL_TAGS if entry[0] > 0x0002})  # command set, file meta: not in a dataset


def _value(vr: str):
    vr = vr.split(" or ")[0]
    if vr == "SQ":
        item = Dataset()
        item.PatientName, item.InstitutionName = PHI, PHI
        return vr, Sequence([item])
    if vr in _NUMBERS:
        return vr, 1
    if vr in _BYTES:
        return vr, PHI.encode()
    if vr == "AT":
        return vr, 0x00100010
    return vr, _TEXT.get(vr, PHI)


def _fill(ds: Dataset) -> int:
    """Every basic-profile attribute the data dictionary knows, with an identifying value; returns how many."""
    count = 0
    for tag in PROFILE_TAGS:
        try:
            vr, value = _value(dictionary_VR(tag))
        except KeyError:
            continue  # a retired or group-repeating entry the dictionary lacks
        if tag not in ds:
            ds.add_new(tag, vr, value)
            count += 1
    ds.add_new(0x00091001, "LO", PHI)  # private tags, as scanners write them
    return count


@pytest.fixture(scope="module")
def loaded():
    source = pydicom.dcmread(XRAYS / "siim_pneumothorax_sample.dcm")
    original_uid = source.SOPInstanceUID
    added = _fill(source)
    nested = Dataset()
    _fill(nested)
    source.ContributingEquipmentSequence = Sequence([nested])  # the probe's case: names inside a sequence
    source.ReferencedImageSequence = Sequence([nested])
    buffer = io.BytesIO()
    source.save_as(buffer)
    return source, original_uid, added, buffer.getvalue()


def test_every_basic_profile_attribute_is_removed_or_replaced_top_level_and_nested(loaded):
    source, original_uid, added, data = loaded
    assert added > 400  # the table's attributes really are in the file, and in the sequences
    assert data.count(PHI.encode()) > 2 * added
    cleaned_bytes = deidentify_dicom(data)
    cleaned = pydicom.dcmread(io.BytesIO(cleaned_bytes))
    assert PHI.encode() not in cleaned_bytes and b"PHISECRET" not in cleaned_bytes
    assert original_uid.encode() not in cleaned_bytes and source.StudyInstanceUID.encode() not in cleaned_bytes
    left = {element.keyword or str(element.tag) for element in cleaned.iterall()}
    assert left <= set(KEPT_KEYWORDS) | {"SOPInstanceUID"}, left - set(KEPT_KEYWORDS)
    for tag in PROFILE_TAGS:  # the profile's actions: X/Z/D removed (stronger than Z/D), U replaced
        if tag in cleaned:
            assert cleaned[tag].keyword == "SOPInstanceUID" and cleaned[tag].value != original_uid
    assert cleaned.file_meta.MediaStorageSOPInstanceUID == cleaned.SOPInstanceUID
    assert not any(element.VR == "SQ" for element in cleaned) and 0x00091001 not in cleaned


def test_pixels_and_decoding_are_unchanged_and_the_result_is_deterministic(loaded):
    source, _, _, data = loaded
    cleaned = pydicom.dcmread(io.BytesIO(deidentify_dicom(data)))
    assert np.array_equal(cleaned.pixel_array, source.pixel_array)
    assert cleaned.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert deidentify_dicom(data) == deidentify_dicom(data)  # infer checks the stored bytes by hash
    for name in ("siim_pneumothorax_sample.dcm", "Fake_MONOHR1.dcm"):
        original = (XRAYS / name).read_bytes()
        assert check_image(deidentify_dicom(original)).format == "dicom"


@pytest.mark.parametrize("syntax", ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "DeflatedExplicitVRLittleEndian",
                                    "RLELossless", "JPEGBaseline8Bit"])
def test_native_pixel_data_is_spliced_byte_for_byte_as_writing_it_would_give(syntax, monkeypatch):
    """Issue 28: native PixelData (over 64 KiB) is copied from the upload after the kept header, not read and written
    again; the stored file is the same bytes as the full rewrite's, and its pixels are the original's."""
    import hashlib

    import cxr_model.privacy as privacy
    from tests.dicom_factory import encode_dicom

    rng = np.random.default_rng(5)
    array = rng.integers(0, 4096 if syntax != "JPEGBaseline8Bit" else 256, size=(300, 280)).astype(
        np.uint16 if syntax != "JPEGBaseline8Bit" else np.uint8)
    source = encode_dicom(array, syntax)
    spliced = privacy.pixel_element(source, pydicom.dcmread(io.BytesIO(source), force=True, defer_size=65536))
    assert (spliced is not None) == (syntax in ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian"))
    fast = deidentify_dicom(source, hashlib.sha256(source).hexdigest())
    monkeypatch.setattr(privacy, "pixel_element", lambda *args: None)
    assert fast == deidentify_dicom(source)
    assert np.array_equal(pydicom.dcmread(io.BytesIO(fast)).pixel_array,
                          pydicom.dcmread(io.BytesIO(source)).pixel_array)
