"""A PACS study as a hospital routes it: a frontal PA CR, a lateral, a CT slice and an SR, with a fake patient."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from tests.dicom_factory import SYNTAXES, clinical_radiograph, native_dataset, syntax_array

FAKE_PATIENT = {
    "PatientName": "DOE^JANE^Q",
    "PatientID": "PID-4711-SECRET",
    "PatientBirthDate": "19600229",
    "PatientSex": "F",
    "AccessionNumber": "ACC-0815-SECRET",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "InstitutionName": "St. Nowhere General",
    "StudyID": "STUDY-42",
    "StudyDate": "20261205",
    "StudyTime": "071500",
}
# strings that must never leave the gateway towards the service (patient identity, accession, institution)
PHI_MARKERS = ("DOE^JANE", "PID-4711-SECRET", "19600229", "ACC-0815-SECRET", "HOUSE^GREGORY",
               "St. Nowhere General", "STUDY-42")


@dataclass(frozen=True)
class StudyInstance:
    role: str  # "pa", "lateral", "ct", "sr"
    sop_instance_uid: str
    dicom: bytes
    expect_scored: bool
    skip_reason_hint: str = ""  # a word the gateway's skip reason must contain


def _save(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _with_study(ds, study_uid: str, series_uid: str, number: int, patient: dict) -> None:
    for keyword, value in patient.items():
        setattr(ds, keyword, value)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.SeriesNumber, ds.InstanceNumber = number, 1


def radiograph(study_uid: str, *, view: str = "PA", modality: str = "CR", syntax: str = "JPEG2000Lossless",
               size: int = 512, seed: int = 0, patient: dict | None = None, body_part: str = "CHEST",
               series_number: int = 1) -> tuple[str, bytes]:
    """A CR/DX chest radiograph in a (compressed) transfer syntax; its SOP Instance UID and bytes."""
    from pydicom.uid import CTImageStorage, ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation
    from pydicom.uid import generate_uid

    array = syntax_array(clinical_radiograph(size, size, bits=12, seed=seed), syntax)
    ds = native_dataset(array, bits_stored=12 if array.dtype != np.uint8 else 8)
    sop_class = {"CR": ComputedRadiographyImageStorage, "DX": DigitalXRayImageStorageForPresentation,
                 "CT": CTImageStorage}[modality]
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = modality, view, body_part
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    if modality == "CT":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        del ds.ViewPosition
    _with_study(ds, study_uid, generate_uid(), series_number, patient or FAKE_PATIENT)
    ds = SYNTAXES[syntax].encode(ds, array)
    return ds.SOPInstanceUID, _save(ds)


def text_sr(study_uid: str, patient: dict | None = None) -> tuple[str, bytes]:
    """A Basic Text SR (a radiologist's prior report): a non-image object the gateway must skip."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = BasicTextSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality, ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "SR", "CONTAINER", "COMPLETE", "UNVERIFIED"
    ds.ContinuityOfContent = "SEPARATE"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = "18748-4", "LN", "Diagnostic imaging report"
    ds.ConceptNameCodeSequence = [title]
    item = Dataset()
    item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", "No acute findings."
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = "121071", "DCM", "Finding"
    item.ConceptNameCodeSequence = [concept]
    ds.ContentSequence = [item]
    _with_study(ds, study_uid, generate_uid(), 9, patient or FAKE_PATIENT)
    return ds.SOPInstanceUID, _save(ds)


def mixed_study(seed: int = 0, pa_syntax: str = "JPEG2000Lossless", patient: dict | None = None
                ) -> tuple[str, list[StudyInstance]]:
    """(StudyInstanceUID, instances): a PA CR to score, and a lateral, a CT slice and an SR to skip."""
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    pa_uid, pa = radiograph(study_uid, view="PA", syntax=pa_syntax, seed=seed, patient=patient)
    lat_uid, lat = radiograph(study_uid, view="LL", syntax="JPEGLSLossless", seed=seed + 1, patient=patient,
                              series_number=2)
    ct_uid, ct = radiograph(study_uid, modality="CT", syntax="RLELossless", size=256, seed=seed + 2,
                            patient=patient, series_number=3)
    sr_uid, sr = text_sr(study_uid, patient)
    return study_uid, [
        StudyInstance("pa", pa_uid, pa, True),
        StudyInstance("lateral", lat_uid, lat, False, "viewposition"),
        StudyInstance("ct", ct_uid, ct, False, "ct"),
        StudyInstance("sr", sr_uid, sr, False, "non-image"),
    ]
