"""De-identification of DICOM uploads before they are stored: only what inference needs is kept."""
from __future__ import annotations

import io

import pydicom

# DICOM PS3.15 basic-profile attributes that identify a patient, a visit or the people and places involved.
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientBirthDate", "PatientBirthTime", "PatientBirthName", "PatientMotherBirthName",
    "PatientAddress", "PatientTelephoneNumbers", "PatientInsurancePlanCodeSequence", "MilitaryRank",
    "BranchOfService", "MedicalRecordLocator", "EthnicGroup", "Occupation", "AdditionalPatientHistory",
    "PatientComments", "PatientReligiousPreference", "PatientSex", "PatientAge", "PatientSize", "PatientWeight",
    "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate",
    "AcquisitionTime", "ContentDate", "ContentTime", "AcquisitionDateTime", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "ReferringPhysicianName", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "StationName", "DeviceSerialNumber",
    "StudyDescription", "SeriesDescription", "RequestAttributesSequence", "StudyInstanceUID",
    "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "ImageComments", "RequestedProcedureID",
    "ScheduledProcedureStepID", "PerformedProcedureStepID", "AdmissionID", "CurrentPatientLocation",
)


def deidentify_dicom(data: bytes) -> bytes:
    """The same image with identifying attributes and all private tags removed; pixel data untouched."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    for keyword in IDENTIFYING_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)
    ds.remove_private_tags()
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and "MediaStorageSOPInstanceUID" in file_meta:
        del file_meta.MediaStorageSOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()
