"""A hospital's path end to end: studies in a real Orthanc routed to the DICOM gateway (C-STORE and STOW-RS), scored
by the local stack, and the SR filed back into the same study; PHI never reaches the service; faults lose nothing."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
import requests

from cxr_local.waiting import wait_until
from tests.e2e.conftest import COMPLETION_SLA_S
from tests.pacs import orthanc as orthanc_module
from tests.pacs.gateway_process import GatewayProcess, create_client_key
from tests.pacs.gateway_stack import GATEWAY_MODALITY, start_pacs_stack
from tests.pacs.sr_check import COMPREHENSIVE_3D_SR, job_id, read_sr, scores, source_uids, texts
from tests.pacs.study import PHI_MARKERS, mixed_study, radiograph

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SR_SLA_S = COMPLETION_SLA_S + 60  # one scoring plus the gateway's long poll and delivery
ROUTED_STUDIES: list[list[str]] = []  # the study and instance UIDs each routing test sent (the PHI test reads them)
FAST_RETRIES = {"CXR_GATEWAY_RETRY_BASE_S": "0.5", "CXR_GATEWAY_RETRY_MAX_S": "2"}


def require_orthanc() -> None:
    """Skip without Orthanc, unless `make test` asked for it (CXR_REQUIRE_ORTHANC=1): then it is a failure."""
    reason = orthanc_module.missing_reason()
    if reason:
        if orthanc_module.env_flag_required():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """`python -m cxr_local --gateway` (its own stack: the bucket holds only this module's uploads) and Orthanc."""
    require_orthanc()
    setup = start_pacs_stack(tmp_path_factory.mktemp("pacs"), allow_stand_in=True, gateway_env=FAST_RETRIES)
    yield setup
    code = setup.stop()
    assert code == 0, f"local stack exited with {code}:\n{setup.stack.log_tail()}"


@pytest.fixture(scope="module")
def local_stack(pacs):
    return pacs.stack


def new_instances(orthanc, study_id: str, sent: set[str]) -> list[dict]:
    return [item for item in orthanc.study_instances(study_id) if item["MainDicomTags"]["SOPInstanceUID"] not in sent]


def wait_for_srs(orthanc, study_id: str, sent: set[str], count: int = 1, timeout_s: float = SR_SLA_S) -> list[dict]:
    return wait_until(lambda: (found := new_instances(orthanc, study_id, sent)) and len(found) >= count and found,
                      timeout_s, what=f"{count} SR(s) in Orthanc's study {study_id}")


def load_study(orthanc, instances) -> str:
    header = pydicom.dcmread(io.BytesIO(instances[0].dicom), stop_before_pixels=True)
    ROUTED_STUDIES.append([str(header.StudyInstanceUID), *[instance.sop_instance_uid for instance in instances]])
    for instance in instances:
        orthanc.upload(instance.dicom)
    return orthanc.find_study(pydicom.dcmread(io.BytesIO(instances[0].dicom), stop_before_pixels=True)
                              .StudyInstanceUID)


def gateway_result(local_stack, gateway, job: str, fmt: str | None = None) -> requests.Response:
    params = {"format": fmt} if fmt else None
    return requests.get(f"{local_stack.url}/v1/jobs/{job}/result", params=params,
                        headers={"x-api-key": gateway.api_key}, timeout=30)


def check_sr(pacs, local_stack, study_id: str, sr_entry: dict, pa) -> None:
    """The SR is a TID 1500 report in the PA's study, labelled stand-in, whose scores are the API's for its job."""
    data = pacs.orthanc.instance_file(sr_entry["ID"])
    report = read_sr(data)
    source = pydicom.dcmread(io.BytesIO(pa.dicom), stop_before_pixels=True)
    assert report.SOPClassUID == COMPREHENSIVE_3D_SR
    assert report.StudyInstanceUID == source.StudyInstanceUID
    assert (report.PatientID, str(report.PatientName)) == (source.PatientID, str(source.PatientName))
    assert report.SeriesInstanceUID not in {source.SeriesInstanceUID}
    assert source_uids(report) == {pa.sop_instance_uid}
    notes = " ".join(texts(report))
    assert "research use only" in notes.lower() and "not a medical device" in notes.lower()
    assert "STAND-IN" in notes and "STAND-IN" in report.SeriesDescription  # the tests' weights are random-init
    job = job_id(report)
    assert job, f"the SR names no job id: {texts(report)}"
    result = gateway_result(local_stack, pacs.gateway, job)
    assert result.status_code == 200, result.text
    api_scores = result.json()["output"]
    sr_scores = scores(report)
    assert set(sr_scores) == set(api_scores)
    for label, score in api_scores.items():
        assert sr_scores[label] == pytest.approx(score, abs=1e-9), label
    fhir = gateway_result(local_stack, pacs.gateway, job, "fhir").json()  # the same result for an EHR
    assert {obs["code"]["coding"][0]["code"]: obs["valueQuantity"]["value"] for obs in fhir["contained"]} == \
        pytest.approx(api_scores, abs=1e-12)


def test_cstore_routed_study_scores_the_pa_skips_the_rest_and_files_the_sr_in_the_study(pacs, local_stack):
    study_uid, instances = mixed_study(seed=10, pa_syntax="JPEG2000Lossless")
    study_id = load_study(pacs.orthanc, instances)
    before = pacs.gateway.metrics()["skipped_by_reason"]
    answer = pacs.orthanc.store_to_modality(GATEWAY_MODALITY, [study_id])
    assert answer["InstancesCount"] == 4 and answer["FailedInstancesCount"] == 0, answer
    sent = {instance.sop_instance_uid for instance in instances}
    (sr_entry,) = wait_for_srs(pacs.orthanc, study_id, sent)
    check_sr(pacs, local_stack, study_id, sr_entry, instances[0])
    skipped = pacs.gateway.metrics()["skipped_by_reason"]
    grown = {reason for reason, count in skipped.items() if count > before.get(reason, 0)}
    assert len(grown) == 3, skipped  # the lateral, the CT slice and the text SR, each for its own reason
    for instance in instances[1:]:
        assert any(instance.skip_reason_hint in reason.lower() for reason in grown), (instance.role, grown)
    log = pacs.gateway.log_text()
    assert "is not frontal" in log and "skipped" in log


def test_stow_rs_routed_study_answers_each_instance_and_files_the_sr(pacs, local_stack):
    study_uid, instances = mixed_study(seed=20, pa_syntax="JPEGLSLossless")
    study_id = load_study(pacs.orthanc, instances)
    pacs.orthanc.stow_to_server(GATEWAY_MODALITY, [study_id])
    sent = {instance.sop_instance_uid for instance in instances}
    (sr_entry,) = wait_for_srs(pacs.orthanc, study_id, sent)
    check_sr(pacs, local_stack, study_id, sr_entry, instances[0])


def test_stow_rs_response_gives_each_instance_its_status_and_skip_reason(pacs):
    _, instances = mixed_study(seed=30, pa_syntax="RLELossless")
    boundary = "cxr-test-boundary"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + item.dicom + b"\r\n"
                    for item in instances) + b"--" + boundary.encode() + b"--\r\n"
    response = requests.post(pacs.gateway.stow_url, data=body, timeout=60, headers={
        **pacs.gateway.stow_headers, "Accept": "application/dicom+json",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert response.status_code == 200, response.text
    dataset = pydicom.Dataset.from_json(response.json())
    statuses = {}
    for item in dataset.ReferencedSOPSequence:
        block = item.private_block(0x0009, "CXR GATEWAY")
        reason = block[0x11].value if 0x0009 << 16 | (block.block_start + 0x11) in item else ""
        statuses[item.ReferencedSOPInstanceUID] = (block[0x10].value, reason)
    assert statuses[instances[0].sop_instance_uid][0] == "QUEUED"
    for instance in instances[1:]:
        status, reason = statuses[instance.sop_instance_uid]
        assert status == "SKIPPED" and instance.skip_reason_hint in reason.lower(), (instance.role, reason)


def test_unknown_calling_ae_title_is_refused_and_orthanc_echoes(pacs):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    assert pacs.orthanc.echo(GATEWAY_MODALITY)  # ORTHANC is allowed
    intruder = AE(ae_title="INTRUDER")
    intruder.add_requested_context(Verification)
    intruder.acse_timeout = intruder.network_timeout = 10
    association = intruder.associate("127.0.0.1", pacs.gateway.dicom_port, ae_title=pacs.gateway.ae_title)
    try:
        assert association.is_rejected and not association.is_established
    finally:
        if association.is_established:
            association.release()


def test_nothing_that_reached_the_service_carries_phi(pacs, local_stack):
    """A study of its own routed through (and whatever the tests before it routed): the bucket, the tables, every
    log of the stack and the gateway, and the gateway's store on disk."""
    _, instances = mixed_study(seed=35, pa_syntax="JPEG2000Lossless")
    study_id = load_study(pacs.orthanc, instances)
    pacs.orthanc.store_to_modality(GATEWAY_MODALITY, [study_id])
    wait_for_srs(pacs.orthanc, study_id, {instance.sop_instance_uid for instance in instances})
    stack_s3 = local_stack.aws("s3")
    bucket = local_stack.info["aws_env"]["IMAGES_BUCKET"]
    objects = [obj["Key"] for page in stack_s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
               for obj in page.get("Contents", [])]
    assert objects, "the routed studies put images in the bucket"
    for key in objects:
        data = stack_s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        leaked = [marker for marker in PHI_MARKERS if marker.encode() in data]
        assert not leaked, (key, leaked)
        if data[128:132] == b"DICM":
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            assert not {"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID"} & set(
                ds.dir()), key
    dynamo = local_stack.aws("dynamodb")
    for table in dynamo.list_tables()["TableNames"]:
        dump = json.dumps(dynamo.scan(TableName=table)["Items"])
        assert not [marker for marker in PHI_MARKERS if marker in dump], table
    routed_uids = [uid for study in ROUTED_STUDIES for uid in study]
    assert routed_uids, "the routed studies' UIDs were recorded"
    for log in Path(local_stack.log_path).parent.glob("*.log"):  # the stack's, its functions', the gateway's
        text = log.read_text(errors="replace")
        assert not [marker for marker in PHI_MARKERS if marker in text], log
        assert not [uid for uid in routed_uids if uid in text], log  # PS3.15: the original UIDs identify too
    stored = [path for path in pacs.gateway.store_path.parent.rglob("*") if path.is_file()]
    assert stored
    for path in stored:  # the database, its WAL, the spool files of received instances, the gateway's config
        raw = path.read_bytes()
        assert not [marker for marker in PHI_MARKERS if marker.encode() in raw], path  # encrypted at rest


def test_orthanc_down_while_the_result_is_ready_gets_the_sr_after_it_restarts(pacs):
    _, instances = mixed_study(seed=40, pa_syntax="JPEGLosslessSV1")
    study_id = load_study(pacs.orthanc, instances[:1])
    pacs.orthanc.stop()  # first: an SR must not slip into an Orthanc that is still shutting down
    assert c_store_as_orthanc(pacs.gateway, instances[0].dicom) == 0x0000  # what Orthanc routed before it went down
    try:
        try:
            wait_until(lambda: pacs.gateway.metrics()["counts"].get("retries_ready", 0) >= 1, SR_SLA_S,
                       what="a failed delivery to the stopped Orthanc")
        except TimeoutError:
            pytest.fail(f"no failed delivery: {pacs.gateway.metrics()}\n{pacs.gateway.log_text()[-3000:]}")
        backlog = pacs.gateway.health()["backlog"]
        assert backlog["by_state"]["ready"] >= 1 and backlog["oldest_pending_age_s"] > 0, backlog
    finally:
        pacs.orthanc.start()
    (sr_entry,) = wait_for_srs(pacs.orthanc, study_id, {instances[0].sop_instance_uid})
    assert read_sr(pacs.orthanc.instance_file(sr_entry["ID"])).SOPClassUID == COMPREHENSIVE_3D_SR
    wait_until(lambda: pacs.gateway.health()["backlog"]["pending"] == 0, 30, what="backlog drained")


def c_store_as_orthanc(gateway, data: bytes) -> int:
    """C-STORE one instance to a gateway with Orthanc's calling AE title; the status."""
    from pynetdicom import AE

    dataset = pydicom.dcmread(io.BytesIO(data))
    sender = AE(ae_title="ORTHANC")
    sender.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    association = sender.associate("127.0.0.1", gateway.dicom_port, ae_title=gateway.ae_title)
    assert association.is_established
    try:
        return association.send_c_store(dataset).Status
    finally:
        association.release()


def test_gateway_killed_mid_study_loses_nothing_after_restart(pacs):
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    images = [radiograph(study_uid, seed=50 + index, syntax="ExplicitVRLittleEndian", size=256,
                         series_number=index + 1) for index in range(4)]
    for _, data in images:
        pacs.orthanc.upload(data)
    study_id = pacs.orthanc.find_study(study_uid)
    pacs.orthanc.store_to_modality(GATEWAY_MODALITY, [study_id])
    pending = pacs.gateway.health()["backlog"]["pending"]
    pacs.gateway.kill()  # SIGKILL while the study is in hand: acknowledged to the PACS, not yet delivered
    assert pending >= 1, "the study was already delivered before the kill: nothing tested"
    pacs.gateway.restart(env=FAST_RETRIES)
    sent = {uid for uid, _ in images}
    found = wait_for_srs(pacs.orthanc, study_id, sent, count=len(images), timeout_s=SR_SLA_S * 2)
    sources = set()
    for entry in found:
        sources |= source_uids(read_sr(pacs.orthanc.instance_file(entry["ID"])))
    assert sources == sent and len(found) == len(images)  # one SR per image: none lost, none twice


def test_a_stand_in_result_is_not_sent_without_the_flag(pacs, local_stack, tmp_path):
    """A second gateway without --allow-stand-in, sending to the same Orthanc: it scores, withholds, sends nothing."""
    from pydicom.uid import generate_uid

    strict = GatewayProcess(tmp_path / "strict", local_stack.url,
                            create_client_key(local_stack.ready_file, "gateway-strict"),
                            f"{pacs.orthanc.aet}@127.0.0.1:{pacs.orthanc.dicom_port}", ["ORTHANC"],
                            allow_stand_in=False).start()
    try:
        study_uid = generate_uid()
        uid, data = radiograph(study_uid, seed=60, syntax="ExplicitVRLittleEndian", size=256)
        pacs.orthanc.upload(data)
        assert c_store_as_orthanc(strict, data) == 0x0000
        wait_until(lambda: strict.metrics()["counts"].get("withheld_stand_in", 0) == 1, SR_SLA_S,
                   what="the stand-in result withheld")
        assert strict.health()["backlog"]["pending"] == 0
        assert strict.metrics()["counts"].get("delivered", 0) == 0
        study_id = pacs.orthanc.find_study(study_uid)
        assert [item["MainDicomTags"]["SOPInstanceUID"] for item in pacs.orthanc.study_instances(study_id)] == [uid]
        assert "withheld" in strict.log_path.read_text()
    finally:
        strict.stop()


def test_the_sr_goes_back_by_stow_rs_when_the_destination_is_orthancs_dicomweb(tmp_path_factory):
    """`--gateway-destination http://.../dicom-web/studies`: the SR reaches Orthanc through its DICOMweb plugin."""
    require_orthanc()
    setup = start_pacs_stack(tmp_path_factory.mktemp("pacs-stow-out"), allow_stand_in=True, destination="stow")
    try:
        assert setup.gateway.info["destination"].startswith("STOW-RS http://127.0.0.1:")
        _, instances = mixed_study(seed=70, pa_syntax="JPEG2000")
        study_id = load_study(setup.orthanc, instances[:1])
        setup.orthanc.store_to_modality(GATEWAY_MODALITY, [study_id])
        (sr_entry,) = wait_for_srs(setup.orthanc, study_id, {instances[0].sop_instance_uid})
        report = read_sr(setup.orthanc.instance_file(sr_entry["ID"]))
        assert report.SOPClassUID == COMPREHENSIVE_3D_SR and source_uids(report) == {instances[0].sop_instance_uid}
        assert setup.gateway.metrics()["counts"].get("delivered") == 1
    finally:
        code = setup.stop()
    assert code == 0
