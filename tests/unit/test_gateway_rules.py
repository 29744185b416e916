"""The gateway scores frontal chest radiographs only and says why it skips anything else."""
import io

import pydicom
import pytest
from pydicom.dataset import Dataset

from cxr_gateway.rules import CR_IMAGE, DX_FOR_PRESENTATION, DX_FOR_PROCESSING, skip_reason
from tests.gateway_support import study


def header(sop_class=CR_IMAGE, **attributes) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = attributes.pop("Modality", "CR")
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("ds", [header(), header(ViewPosition="PA", BodyPartExamined="CHEST"),
                                header(DX_FOR_PRESENTATION, Modality="DX", ViewPosition="AP"),
                                header(BodyPartExamined="CHEST", NumberOfFrames=1)])
def test_frontal_chest_radiographs_are_scored(ds):
    assert skip_reason(ds) is None


@pytest.mark.parametrize("ds, expected", [
    (header("1.2.840.10008.5.1.4.1.1.88.33"), "non-image SOP class: Comprehensive SR Storage"),
    (header("1.2.840.10008.5.1.4.1.1.11.1"), "non-image SOP class: Grayscale Softcopy Presentation State Storage"),
    (header("1.2.840.10008.5.1.4.1.1.88.59"), "non-image SOP class: Key Object Selection Document Storage"),
    (header("1.2.840.10008.5.1.4.1.1.2", Modality="CT"), "SOP class CT Image Storage is not a radiograph"),
    (header("1.2.840.10008.5.1.4.1.1.7"), "SOP class Secondary Capture Image Storage is not a radiograph"),
    (header(DX_FOR_PROCESSING, Modality="DX"), "DX For Processing"),
    (header(Modality="MG"), "Modality MG is not CR or DX"),
    (header(BodyPartExamined="ABDOMEN"), "BodyPartExamined ABDOMEN is not CHEST"),
    (header(ViewPosition="LL"), "ViewPosition LL is not frontal"),
    (header(ViewPosition="LATERAL"), "ViewPosition LATERAL is not frontal"),
    (header(ViewPosition="RL"), "ViewPosition RL is not frontal"),
    (header(NumberOfFrames=3), "multi-frame (3 frames)"),
])
def test_everything_else_is_skipped_with_its_reason(ds, expected):
    assert skip_reason(ds).startswith(expected)


def test_a_routed_study_scores_only_its_frontal_image():
    reasons = {name: skip_reason(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True))
               for name, data in study().items()}
    assert reasons["frontal"] is None
    assert reasons["lateral"].startswith("ViewPosition LL")
    assert reasons["ct"].startswith("SOP class CT Image Storage")
    assert reasons["sr"].startswith("non-image SOP class: Basic Text SR")
