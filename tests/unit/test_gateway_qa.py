"""Held-out edge cases of the gateway's admission: a malformed header is skipped with a reason (never an exception
that kills a STOW-RS request or makes a PACS retry a C-STORE forever), and associations must name the gateway."""
import io

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from cxr_gateway.rules import DX_FOR_PRESENTATION, skip_reason
from cxr_gateway.scp import make_ae


def _read_back_with_frames(raw_value: bytes) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = DX_FOR_PRESENTATION, "1.2.3.4", "DX"
    ds[Tag(0x00280008)] = RawDataElement(Tag(0x00280008), "IS", len(raw_value), raw_value, 0, False, True)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False, implicit_vr=False, little_endian=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True, stop_before_pixels=True)


def test_an_unreadable_number_of_frames_is_a_skip_reason_not_an_exception():
    reason = skip_reason(_read_back_with_frames(b"abc "))
    assert reason is not None and "NumberOfFrames" in reason


def test_associations_must_call_the_gateway_by_its_ae_title():
    assert make_ae("CXR_GATEWAY", ["ORTHANC"]).require_called_aet is True
