"""Studies a PACS would route to the gateway (a frontal CR, a lateral, a CT slice, an SR), with patient identity."""
from __future__ import annotations

import io

import pydicom

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import Comprehensive3DSRStorage, SecondaryCaptureImageStorage

from tests.dicom_factory import SYNTAXES, native_dataset, syntax_array

CR, DX = "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
PATIENT = {"PatientName": "Testperson^Gateway", "PatientID": "GW-PID-73519", "PatientBirthDate": "19610412",
           "PatientSex": "F", "AccessionNumber": "ACC-GW-4471", "InstitutionName": "Gateway Test Hospital",
           "ReferringPhysicianName": "Referrer^Doctor", "StudyDate": "20260301", "StudyTime": "101500",
           "StudyID": "GWSTUDY1", "StudyDescription": "CHEST 2 VIEWS"}
PHI_VALUES = ("Testperson", "GW-PID-73519", "19610412", "ACC-GW-4471", "Gateway Test Hospital", "Referrer")


def small_chest(size: int = 256, seed: int = 0) -> np.ndarray:
    from tests.dicom_factory import clinical_radiograph

    return clinical_radiograph(height=size, width=size, bits=12, seed=seed)


def _identify(ds: Dataset, study_uid: str, series_uid: str, sop_class: str, modality: str, **extra) -> Dataset:
    for keyword, value in PATIENT.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1, 1
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def image_instance(study_uid: str, syntax: str = "ExplicitVRLittleEndian", sop_class: str = CR,
                   modality: str = "CR", array: np.ndarray | None = None, **extra) -> bytes:
    """One image of the study in a transfer syntax (a key of tests.dicom_factory.SYNTAXES), as file bytes."""
    array = syntax_array(small_chest() if array is None else array, syntax)
    ds = native_dataset(array, bits_stored=12 if array.dtype == np.uint16 else 8)
    ds = _identify(ds, study_uid, generate_uid(), sop_class, modality, **extra)
    ds = SYNTAXES[syntax].encode(ds, array)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=syntax == "ImplicitVRLittleEndian", little_endian=True)
    return buffer.getvalue()


def sr_instance(study_uid: str) -> bytes:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = _identify(ds, study_uid, generate_uid(), BASIC_TEXT_SR, "SR")
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def study(study_uid: str | None = None, syntax: str = "ExplicitVRLittleEndian") -> dict[str, bytes]:
    """A routed study: the frontal PA CR (scored), a lateral, a CT slice and an SR (skipped with their reasons)."""
    study_uid = study_uid or generate_uid()
    return {
        "frontal": image_instance(study_uid, syntax, ViewPosition="PA", BodyPartExamined="CHEST"),
        "lateral": image_instance(study_uid, syntax, ViewPosition="LL", BodyPartExamined="CHEST"),
        "ct": image_instance(study_uid, "ExplicitVRLittleEndian", sop_class=CT, modality="CT",
                             array=small_chest(64), BodyPartExamined="CHEST"),
        "sr": sr_instance(study_uid),
    }


class DestinationScp:
    """A destination PACS: a real pynetdicom Storage SCP that keeps what it receives."""

    def __init__(self, ae_title="DEST", port=0, transfer_syntaxes=None, ssl_context=None):
        self.received: list[pydicom.Dataset] = []
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(Comprehensive3DSRStorage, transfer_syntaxes)
        ae.add_supported_context(SecondaryCaptureImageStorage, transfer_syntaxes)
        self.server = ae.start_server(("127.0.0.1", port), block=False, ssl_context=ssl_context,
                                      evt_handlers=[(evt.EVT_C_STORE, self._store)])
        self.port = self.server.server_address[1]

    def _store(self, event):
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        self.received.append(dataset)
        return 0x0000

    def stop(self):
        self.server.shutdown()
