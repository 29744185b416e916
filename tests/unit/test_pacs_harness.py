"""The PACS test harness: Orthanc's generated config (loopback, known peers only, the DICOMweb plugin) and the mixed
study, whose roles the gateway's own rules classify as the e2e tests expect."""
from __future__ import annotations

import io

import pydicom
import pytest

from tests.pacs.orthanc import Modality, Orthanc, StowServer
from tests.pacs.study import FAKE_PATIENT, PHI_MARKERS, mixed_study


def test_orthanc_config_is_loopback_with_known_peers_and_the_dicomweb_plugin(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.pacs.orthanc.dicomweb_plugin", lambda: "/plugins/libOrthancDicomWeb.so")
    orthanc = Orthanc(tmp_path, modalities={"cxr": Modality("CXR_GATEWAY", "127.0.0.1", 11112)},
                      stow_servers={"cxr": StowServer("http://127.0.0.1:8043", {"x-api-key": "t"})})
    config = orthanc.config()
    assert config["RemoteAccessAllowed"] is False and config["AuthenticationEnabled"] is False
    assert config["DicomAlwaysAllowStore"] is False and config["DicomCheckModalityHost"] is True
    assert config["HttpPort"] == orthanc.http_port != config["DicomPort"] == orthanc.dicom_port
    assert config["Plugins"] == ["/plugins/libOrthancDicomWeb.so"]
    assert config["DicomModalities"] == {"cxr": ["CXR_GATEWAY", "127.0.0.1", 11112]}
    assert config["DicomWeb"]["Servers"]["cxr"] == {"Url": "http://127.0.0.1:8043", "HttpHeaders": {"x-api-key": "t"},
                                                   "ChunkedTransfers": True}
    assert config["StorageDirectory"].startswith(str(tmp_path))


def test_the_mixed_study_is_one_study_of_one_patient_in_compressed_syntaxes():
    study_uid, instances = mixed_study(seed=3)
    headers = [pydicom.dcmread(io.BytesIO(item.dicom), stop_before_pixels=True) for item in instances]
    assert [item.role for item in instances] == ["pa", "lateral", "ct", "sr"]
    assert {str(h.StudyInstanceUID) for h in headers} == {study_uid}
    assert {str(h.PatientName) for h in headers} == {FAKE_PATIENT["PatientName"]}
    assert all(h.file_meta.TransferSyntaxUID.is_compressed for h in headers[:3])
    assert all(marker.encode() in instances[0].dicom for marker in PHI_MARKERS)  # the PHI check has teeth


def test_the_gateways_rules_score_the_pa_and_skip_the_rest_with_the_expected_reasons():
    rules = pytest.importorskip("cxr_gateway.rules")
    _, instances = mixed_study(seed=4)
    for item in instances:
        reason = rules.skip_reason(pydicom.dcmread(io.BytesIO(item.dicom), stop_before_pixels=True))
        if item.expect_scored:
            assert reason is None, (item.role, reason)
        else:
            assert reason and item.skip_reason_hint in reason.lower(), (item.role, reason)
