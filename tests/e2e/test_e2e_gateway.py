"""The DICOM gateway on the local stack (`--gateway`): a routed study in by C-STORE, the frontal image scored, its
SR delivered to a Storage SCP with the scores of GET /v1/jobs/{id}/result; no PHI in the bucket or tables; a gateway
killed with SIGKILL mid-study loses nothing."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
import requests
from pynetdicom import AE

from cxr_gateway import sr as sr_module
from cxr_local.processes import free_port
from cxr_local.waiting import wait_until
from tests.e2e.conftest import REPO, start_stack
from tests.gateway_support import PHI_VALUES, DestinationScp, study

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CALLING_AE = "PACS_E2E"
DELIVERY_DEADLINE_S = 180


@pytest.fixture(scope="module")
def destination_port():
    return free_port()


@pytest.fixture(scope="module")
def gateway_stack(tmp_path_factory, destination_port):
    folder = tmp_path_factory.mktemp("cxr_local_gateway")
    stack = start_stack(folder, "--gateway", "--gateway-destination", f"DEST@127.0.0.1:{destination_port}",
                        "--gateway-allow", CALLING_AE, "--gateway-allow-stand-in", "--gateway-dicom-port", "0",
                        "--gateway-http-port", "0", "--gateway-store", str(folder / "gateway"))
    yield stack
    code = stack.stop()
    assert code == 0, f"local stack exited with {code}:\n{stack.log_tail()}"


def c_store(gateway: dict, files: list[bytes]) -> list[int]:
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files]
    ae = AE(ae_title=CALLING_AE)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(gateway["host"], gateway["dicom_port"], ae_title=gateway["ae_title"])
    assert assoc.is_established
    try:
        return [assoc.send_c_store(ds).Status for ds in datasets]
    finally:
        assoc.release()


def gateway_client_key(gateway: dict) -> str:
    return json.loads((Path(gateway["store"]) / "config.json").read_text())["api_key"]


def job_id_of(report) -> str:
    texts = [item.TextValue for item in report.ContentSequence if item.ValueType == "TEXT"]
    return next(text.split()[2] for text in texts if text.startswith("cxr-serverless job "))


def assert_scores_equal_the_result(stack, report) -> dict:
    job_id = job_id_of(report)
    result = requests.get(f"{stack.url}/v1/jobs/{job_id}/result", timeout=30,
                          headers={"x-api-key": gateway_client_key(stack.info["gateway"])}).json()
    back = sr_module.read_back(_encoded(report))
    scores = {}
    for group in back.content.get_image_measurement_groups():
        (measurement,) = group.get_measurements()
        scores[group.tracking_identifier] = measurement.value
    assert scores == pytest.approx(result["output"], abs=1e-9)
    return result


def _encoded(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_routed_study_gets_its_sr_and_no_phi_reaches_aws(gateway_stack, destination_port):
    gateway = gateway_stack.info["gateway"]
    assert set(gateway) >= {"ae_title", "host", "dicom_port", "stow_url", "stow_headers"}
    destination = DestinationScp(port=destination_port)
    try:
        routed = study()
        assert c_store(gateway, list(routed.values())) == [0, 0, 0, 0]
        (report,) = wait_until(lambda: destination.received, DELIVERY_DEADLINE_S, what="the SR at the destination")
        frontal = pydicom.dcmread(io.BytesIO(routed["frontal"]))
        assert report.StudyInstanceUID == frontal.StudyInstanceUID and report.PatientID == frontal.PatientID
        result = assert_scores_equal_the_result(gateway_stack, report)
        assert report.SOPInstanceUID == sr_module.sr_instance_uid(frontal.SOPInstanceUID,
                                                                   sr_module.model_identity(result["model"]))
        assert "STAND-IN WEIGHTS" in report.SeriesDescription  # the tests' weights are the random-init stand-in
        health = requests.get(gateway["health_url"], timeout=10).json()
        assert health["backlog"]["pending"] == 0
        metrics = requests.get(gateway["health_url"].replace("/health", "/metrics"), timeout=10).json()
        assert metrics["counts"]["skipped"] >= 3 and metrics["counts"]["delivered"] >= 1
    finally:
        destination.stop()
    identifying = [*PHI_VALUES, str(frontal.StudyInstanceUID), str(frontal.SOPInstanceUID),
                   str(frontal.SeriesInstanceUID)]
    s3 = gateway_stack.aws("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for listed in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            body = s3.get_object(Bucket=bucket["Name"], Key=listed["Key"])["Body"].read()
            for value in identifying:
                assert value.encode() not in body, (bucket["Name"], listed["Key"])
    dynamodb = gateway_stack.aws("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        dump = json.dumps(dynamodb.scan(TableName=table)["Items"])
        for value in identifying:
            assert value not in dump, table


def test_stow_rs_with_the_ready_file_headers_is_scored_and_delivered(gateway_stack, destination_port):
    gateway = gateway_stack.info["gateway"]
    routed = study(syntax="JPEG2000Lossless")
    boundary = "cxr-e2e-boundary"
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
                    for data in routed.values()) + f"--{boundary}--\r\n".encode()
    headers = {**gateway["stow_headers"], "Accept": "application/dicom+json",
               "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    destination = DestinationScp(port=destination_port)
    try:
        answer = requests.post(gateway["stow_url"], data=body, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["00081199"]["Value"]) == 4
        (report,) = wait_until(lambda: destination.received, DELIVERY_DEADLINE_S, what="the SR of the STOW-RS study")
        assert report.StudyInstanceUID == pydicom.dcmread(io.BytesIO(routed["frontal"])).StudyInstanceUID
        assert_scores_equal_the_result(gateway_stack, report)
    finally:
        destination.stop()
    no_key = {key: value for key, value in headers.items() if key not in gateway["stow_headers"]}
    assert requests.post(gateway["stow_url"], data=body, headers=no_key, timeout=60).status_code == 401


def restart_gateway(gateway: dict, log: Path) -> subprocess.Popen:
    """The same gateway (its config, its store) started again, as a supervisor would after a crash."""
    ready = Path(gateway["store"]) / "ready.json"
    ready.unlink(missing_ok=True)
    env = {**os.environ, "CXR_GATEWAY_RETRY_MAX_S": "2"}
    process = subprocess.Popen([sys.executable, "-m", "cxr_gateway", "--config",
                                str(Path(gateway["store"]) / "config.json")], cwd=REPO, env=env,
                               stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    wait_until(lambda: ready.exists() or process.poll() is not None, 60, what="the restarted gateway's ready file")
    assert process.poll() is None, log.read_text()[-3000:]
    gateway.update({key: value for key, value in json.loads(ready.read_text()).items()
                    if key in ("dicom_port", "health_url", "pid")})
    return process


def test_sigkill_of_the_gateway_mid_study_loses_nothing(gateway_stack, destination_port, tmp_path):
    gateway = dict(gateway_stack.info["gateway"])
    routed = study()
    assert c_store(gateway, [routed["frontal"], routed["lateral"]]) == [0, 0]  # spooled before success came back
    os.kill(gateway["pid"], signal.SIGKILL)  # destination down and the image just received: nothing delivered yet
    process = restart_gateway(gateway, tmp_path / "gateway.log")
    try:
        wait_until(lambda: requests.get(gateway["health_url"], timeout=10).json()["backlog"]["by_state"]["ready"],
                   DELIVERY_DEADLINE_S, what="the SR built and waiting for the (down) destination")
        os.kill(process.pid, signal.SIGKILL)  # again, now with the SR pending delivery
        process.wait(10)
        destination = DestinationScp(port=destination_port)
        try:
            process = restart_gateway(gateway, tmp_path / "gateway.log")
            (report,) = wait_until(lambda: destination.received, DELIVERY_DEADLINE_S, what="the SR after the restarts")
            assert report.StudyInstanceUID == pydicom.dcmread(io.BytesIO(routed["frontal"])).StudyInstanceUID
            assert_scores_equal_the_result(gateway_stack, report)
            wait_until(lambda: requests.get(gateway["health_url"], timeout=10).json()["backlog"]["pending"] == 0, 30,
                       what="an empty backlog")
        finally:
            destination.stop()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
