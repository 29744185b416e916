"""Coded concepts for the SR: findings from pydicom's code dictionary (SNOMED CT, DICOM), the rest in a private scheme.

Where pydicom.sr.codedict has a concept that means the label, it is used; torchxrayvision labels without one there are
coded in the private scheme PRIVATE_SCHEME (declared in each SR's CodingSchemeIdentificationSequence), never under
a standard scheme's designator.
"""
from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

PRIVATE_SCHEME = "99CXRGW"
PRIVATE_SCHEME_NAME = "cxr-serverless gateway finding labels (torchxrayvision label names)"
PRIVATE_SCHEME_ORGANISATION = "cxr-serverless project"

_STANDARD = {
    "Pneumothorax": codes.SCT.Pneumothorax,
    "Edema": codes.SCT.PulmonaryEdema,
    "Fibrosis": codes.SCT.Fibrosis,
    "Effusion": codes.SCT.PleuralEffusion,
    "Cardiomegaly": codes.SCT.Cardiomegaly,
    "Nodule": codes.SCT.Nodule,
    "Mass": codes.SCT.Mass,
    "Infiltration": codes.DCM.Infiltrate,
    "Lung Opacity": codes.DCM.Opacity,
}

SCORE = codes.SCT.Score  # 246262008 "Score (attribute)": the model's calibrated output
NO_UNITS = codes.UCUM.NoUnits  # UCUM "1"
PRESENT, ABSENT = codes.SCT.Present, codes.SCT.Absent
COMMENT = codes.DCM.Comment
CHEST = codes.SCT.Chest
FINDING = codes.DCM.Finding


def finding_concept(label: str) -> CodedConcept:
    code = _STANDARD.get(label)
    if code is not None:
        return CodedConcept(code.value, code.scheme_designator, code.meaning)
    return CodedConcept(label.replace(" ", "_").upper()[:16], PRIVATE_SCHEME, label.replace("_", " "))


def uses_private_scheme(labels) -> bool:
    return any(label not in _STANDARD for label in labels)


def private_scheme_item() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = PRIVATE_SCHEME_ORGANISATION
    return item
