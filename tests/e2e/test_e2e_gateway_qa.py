"""Held-out checks of the DICOM gateway on the local stack, through its documented interfaces only (docs/pacs.md,
the ready file's "gateway" block): other studies (DX AP, no ViewPosition, MONOCHROME1, 16-bit, the compressed
transfer syntaxes a PACS proposes, a re-sent instance, a corrupt payload) and other clients (wrong AE titles,
STOW-RS without a key, wrong media types, non-DICOM parts)."""
from __future__ import annotations

import io

import highdicom
import numpy as np
import pydicom
import pytest
import requests
from pydicom.uid import generate_uid
from pynetdicom import AE

from cxr_local.processes import free_port
from cxr_local.waiting import wait_until
from tests.e2e.conftest import start_stack
from tests.gateway_support import PHI_VALUES, DestinationScp, image_instance, small_chest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CALLING_AE = "PACS_QA"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
DEADLINE_S = 240


@pytest.fixture(scope="module")
def destination():
    scp = DestinationScp(port=free_port())
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, destination):
    folder = tmp_path_factory.mktemp("cxr_local_gateway_qa")
    stack = start_stack(folder, "--gateway", "--gateway-destination", f"DEST@127.0.0.1:{destination.port}",
                        "--gateway-allow", CALLING_AE, "--gateway-allow-stand-in", "--gateway-dicom-port", "0",
                        "--gateway-http-port", "0", "--gateway-store", str(folder / "gateway"))
    yield stack
    assert stack.stop() == 0


def _associate(gateway: dict, calling: str = CALLING_AE, called: str | None = None, contexts=()):
    ae = AE(ae_title=calling)
    for sop_class, syntax in contexts or [(DX, "1.2.840.10008.1.2.1")]:
        ae.add_requested_context(sop_class, syntax)
    return ae.associate(gateway["host"], gateway["dicom_port"], ae_title=called or gateway["ae_title"])


def c_store(gateway: dict, files: list[bytes]) -> list[int]:
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files]
    contexts = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets})
    assoc = _associate(gateway, contexts=contexts)
    assert assoc.is_established
    try:
        return [assoc.send_c_store(ds).Status for ds in datasets]
    finally:
        assoc.release()


def srs_for(destination: DestinationScp, source: bytes) -> list:
    uid = pydicom.dcmread(io.BytesIO(source)).SOPInstanceUID
    return [sr for sr in list(destination.received)
            if any(ref.ReferencedSOPInstanceUID == uid
                   for item in sr.get("CurrentRequestedProcedureEvidenceSequence", [])
                   for series in item.ReferencedSeriesSequence for ref in series.ReferencedSOPSequence)]


def wait_for_sr(destination, source: bytes, what: str):
    return wait_until(lambda: srs_for(destination, source), DEADLINE_S, what=f"the SR of {what}")[0]


def test_dx_ap_chest_lowercase_and_no_view_position_are_scored(stack, destination):
    gateway = stack.info["gateway"]
    study_uid = generate_uid()
    ap = image_instance(study_uid, sop_class=DX, modality="DX", ViewPosition="AP", BodyPartExamined="Chest")
    no_view = image_instance(study_uid, sop_class=DX, modality="DX")
    assert c_store(gateway, [ap, no_view]) == [0, 0]
    for source, what in ((ap, "a DX AP with BodyPartExamined Chest"), (no_view, "a DX without ViewPosition")):
        report = wait_for_sr(destination, source, what)
        back = highdicom.sr.srread(io.BytesIO(_encoded(report)))
        text = " ".join(item.TextValue for item in report.ContentSequence if item.ValueType == "TEXT")
        assert "Research use only, not a medical device" in text
        assert "STAND-IN WEIGHTS" in report.SeriesDescription and "STAND-IN" in text
        assert back.StudyInstanceUID == study_uid


@pytest.mark.parametrize("syntax", ["JPEGLSLossless", "JPEGLossless", "JPEG2000Lossless", "RLELossless",
                                    "DeflatedExplicitVRLittleEndian", "ImplicitVRLittleEndian"])
def test_each_proposed_transfer_syntax_is_taken_and_scored(stack, destination, syntax):
    source = image_instance(generate_uid(), syntax, ViewPosition="PA", BodyPartExamined="CHEST")
    assert c_store(stack.info["gateway"], [source]) == [0]
    wait_for_sr(destination, source, syntax)


def test_monochrome1_16_bit_is_scored(stack, destination):
    ds = pydicom.dcmread(io.BytesIO(image_instance(generate_uid(), ViewPosition="PA")))
    ds.PixelData = (small_chest().astype(np.uint16) * 16).tobytes()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PhotometricInterpretation = "MONOCHROME1"
    source = _encoded(ds)
    assert c_store(stack.info["gateway"], [source]) == [0]
    wait_for_sr(destination, source, "a MONOCHROME1 16-bit CR")


def test_the_same_instance_sent_twice_gets_one_sr_uid(stack, destination):
    source = image_instance(generate_uid(), ViewPosition="PA")
    assert c_store(stack.info["gateway"], [source]) == [0]
    first = wait_for_sr(destination, source, "the first send")
    assert c_store(stack.info["gateway"], [source]) == [0]
    wait_until(lambda: len(srs_for(destination, source)) >= 2 or stack_idle(stack), DEADLINE_S,
               what="the re-send handled")
    assert {sr.SOPInstanceUID for sr in srs_for(destination, source)} == {first.SOPInstanceUID}


def stack_idle(stack) -> bool:
    health = requests.get(stack.info["gateway"]["health_url"], timeout=10).json()
    return health["backlog"]["pending"] == 0


def test_a_corrupt_pixel_payload_is_skipped_and_the_study_still_scored(stack, destination):
    gateway = stack.info["gateway"]
    study_uid = generate_uid()
    good = image_instance(study_uid, ViewPosition="PA")
    ds = pydicom.dcmread(io.BytesIO(image_instance(study_uid, "JPEGLSLossless", ViewPosition="PA")))
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 64])
    corrupt = _encoded(ds)
    boundary = "qa-boundary"
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
                    for data in (good, corrupt, b"not dicom at all")) + f"--{boundary}--\r\n".encode()
    answer = requests.post(gateway["stow_url"], data=body, timeout=60, headers={
        **gateway["stow_headers"], "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert answer.status_code == 202, answer.text
    assert len(answer.json()["00081198"]["Value"]) == 1  # the non-DICOM part failed
    wait_for_sr(destination, good, "the good image beside a corrupt one")
    metrics_url = gateway["health_url"].replace("/health", "/metrics")
    wait_until(lambda: requests.get(metrics_url, timeout=10).json()["skipped_by_reason"].get(
        "the service refused the image"), DEADLINE_S, what="the corrupt image skipped with the service's refusal")
    assert requests.get(gateway["health_url"], timeout=10).json()["backlog"]["pending"] == 0


def test_unknown_calling_and_wrong_called_ae_titles_are_refused(stack):
    gateway = stack.info["gateway"]
    assert not _associate(gateway, calling="STRANGER").is_established
    assert not _associate(gateway, called="NOT_THE_GATEWAY").is_established


def test_stow_rs_refusals_are_json(stack):
    gateway = stack.info["gateway"]
    multipart = 'multipart/related; type="application/dicom"; boundary=b'
    cases = [({"Content-Type": multipart}, 401), ({"Content-Type": multipart, "x-api-key": "wrong"}, 401),
             ({**gateway["stow_headers"], "Content-Type": "application/json"}, 415),
             ({**gateway["stow_headers"], "Content-Type": 'multipart/related; type="image/png"; boundary=b'}, 415)]
    for headers, status in cases:
        answer = requests.post(gateway["stow_url"], data=b"--b\r\n\r\nx\r\n--b--\r\n", headers=headers, timeout=30)
        assert answer.status_code == status, (headers, answer.text)
        assert answer.json()["error"]


def test_no_phi_in_the_stack_logs(stack):
    log = stack.log_tail() if hasattr(stack, "log_tail") else ""
    for value in PHI_VALUES:
        assert value not in log


def _encoded(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
