"""The gateway's listeners over real sockets: pynetdicom SCUs (C-ECHO, C-STORE in many transfer syntaxes, an
unknown calling AE), STOW-RS requests, and delivery to a real Storage SCP (C-STORE) and a STOW-RS server."""
from __future__ import annotations

import io
import threading
import uuid

import pydicom
import pytest
import requests
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage, Verification

from cxr_gateway.app import Gateway
from cxr_gateway.config import Destination, GatewayConfig
from cxr_gateway.delivery import CStoreSender, DeliveryError, StowSender
from cxr_gateway.stow import PRIVATE_CREATOR, PRIVATE_GROUP
from tests.gateway_support import DestinationScp, image_instance, study

pytestmark = pytest.mark.integration
TOKEN = "stow-token-" + uuid.uuid4().hex
SYNTAXES = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian", "DeflatedExplicitVRLittleEndian", "RLELossless",
            "JPEGBaseline8Bit", "JPEGExtended12Bit", "JPEGLossless", "JPEGLosslessSV1", "JPEGLSLossless",
            "JPEGLSNearLossless", "JPEG2000Lossless", "JPEG2000", "HTJ2KLossless", "HTJ2K"]


@pytest.fixture
def gateway(tmp_path):
    config = GatewayConfig(ae_title="CXR_GW_TEST", dicom_port=0, http_port=0, allowed_aets=["PACS_A"],
                           stow_tokens=[TOKEN], store_path=str(tmp_path / "store.sqlite3"))
    gateway = Gateway(config, client=object(), sender=None)
    gateway.start(process=False)  # listeners only: what arrives stays in the spool for the test to read
    yield gateway
    gateway.stop()


def associate(gateway, calling="PACS_A", contexts=((Verification, None),)):
    ae = AE(ae_title=calling)
    for abstract, syntax in contexts:
        ae.add_requested_context(abstract, syntax) if syntax else ae.add_requested_context(abstract)
    return ae.associate("127.0.0.1", gateway.dicom_port, ae_title="CXR_GW_TEST")


def spooled(gateway) -> list[bytes]:
    return [item.payload for item in gateway.store.due(100)]


def test_c_echo_from_an_allowed_ae(gateway):
    assoc = associate(gateway)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_an_unknown_calling_ae_title_is_refused(gateway):
    assoc = associate(gateway, calling="STRANGER")
    assert assoc.is_rejected and not assoc.is_established
    assert assoc.acceptor.primitive.result_source == 0x01 and assoc.acceptor.primitive.diagnostic == 0x03


def test_a_source_outside_the_allowed_networks_is_refused(tmp_path):
    config = GatewayConfig(dicom_port=0, http_port=0, allowed_aets=["PACS_A"], allowed_networks=["10.99.0.0/16"],
                           stow_tokens=[TOKEN], store_path=str(tmp_path / "s.sqlite3"))
    gateway = Gateway(config, client=object(), sender=None)
    gateway.start(process=False)
    try:
        assoc = AE(ae_title="PACS_A")
        assoc.add_requested_context(Verification)
        assert not assoc.associate("127.0.0.1", gateway.dicom_port, ae_title=config.ae_title).is_established
        answer = requests.get(f"http://127.0.0.1:{gateway.http_port}/health", timeout=10)
        assert answer.status_code == 403
    finally:
        gateway.stop()


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_c_store_in_the_syntax_the_sender_proposes_is_spooled_as_sent(gateway, syntax):
    data = image_instance(pydicom.uid.generate_uid(), syntax, ViewPosition="PA", BodyPartExamined="CHEST")
    sent = pydicom.dcmread(io.BytesIO(data))
    assoc = associate(gateway, contexts=((ComputedRadiographyImageStorage, [sent.file_meta.TransferSyntaxUID]),))
    assert assoc.is_established
    assert assoc.accepted_contexts[0].transfer_syntax[0] == sent.file_meta.TransferSyntaxUID  # not transcoded
    assert assoc.send_c_store(sent).Status == 0x0000
    assoc.release()
    (stored,) = spooled(gateway)
    received = pydicom.dcmread(io.BytesIO(stored))
    assert received.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
    assert received.SOPInstanceUID == sent.SOPInstanceUID
    assert received.PixelData == sent.PixelData


def test_a_routed_study_by_c_store_spools_only_the_frontal_image(gateway):
    routed = study()
    datasets = {name: pydicom.dcmread(io.BytesIO(data)) for name, data in routed.items()}
    ae = AE(ae_title="PACS_A")
    for ds in datasets.values():
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", gateway.dicom_port, ae_title="CXR_GW_TEST")
    assert assoc.is_established
    statuses = {name: assoc.send_c_store(ds).Status for name, ds in datasets.items()}
    assoc.release()
    assert statuses == dict.fromkeys(routed, 0x0000)  # the skipped ones are taken, never failed
    (stored,) = spooled(gateway)
    assert pydicom.dcmread(io.BytesIO(stored)).SOPInstanceUID == datasets["frontal"].SOPInstanceUID
    assert gateway.metrics.snapshot()["counts"]["skipped"] == 3


def stow(gateway, parts, study_uid=None, headers=None):
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
                    for part in parts) + f"--{boundary}--\r\n".encode()
    url = f"http://127.0.0.1:{gateway.http_port}/studies" + (f"/{study_uid}" if study_uid else "")
    return requests.post(url, data=body, timeout=30, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json", **({"x-api-key": TOKEN} if headers is None else headers)})


def _status_and_reason(item: dict) -> tuple[str, str | None]:
    creator = next(tag for tag, value in item.items() if tag.startswith("0009") and value["Value"] == [PRIVATE_CREATOR])
    block = creator[6:8]
    status = item[f"{PRIVATE_GROUP:04X}{block}10"]["Value"][0]
    reason = item.get(f"{PRIVATE_GROUP:04X}{block}11", {}).get("Value", [None])[0]
    return status, reason


def test_stow_rs_answers_each_instance_queued_or_skipped_with_its_reason(gateway):
    routed = study()
    answer = stow(gateway, list(routed.values()))
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/dicom+json"
    body = answer.json()
    assert "00081198" not in body  # no FailedSOPSequence
    by_uid = {item["00081155"]["Value"][0]: _status_and_reason(item) for item in body["00081199"]["Value"]}
    uids = {name: str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID) for name, data in routed.items()}
    assert by_uid[uids["frontal"]] == ("QUEUED", None)
    assert by_uid[uids["lateral"]][0] == "SKIPPED" and by_uid[uids["lateral"]][1].startswith("ViewPosition LL")
    assert by_uid[uids["ct"]][1].startswith("SOP class CT Image Storage")
    assert by_uid[uids["sr"]][1].startswith("non-image SOP class")
    assert len(spooled(gateway)) == 1


def test_stow_rs_failures_auth_and_media_type(gateway):
    frontal = study()["frontal"]
    assert stow(gateway, [frontal], headers={}).status_code == 401
    assert stow(gateway, [frontal], headers={"x-api-key": "wrong"}).status_code == 401
    assert stow(gateway, [frontal], headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    other_study = stow(gateway, [frontal], study_uid="1.2.3.4")
    assert other_study.status_code == 409
    (failed,) = other_study.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xA900]
    mixed = stow(gateway, [study()["frontal"], b"not dicom at all"])
    assert mixed.status_code == 202 and len(mixed.json()["00081198"]["Value"]) == 1
    plain = requests.post(f"http://127.0.0.1:{gateway.http_port}/studies", data=frontal, timeout=10,
                          headers={"Content-Type": "application/dicom", "x-api-key": TOKEN})
    assert plain.status_code == 415 and plain.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_health_and_metrics_show_the_backlog(gateway):
    stow(gateway, [study()["frontal"]])
    health = requests.get(f"http://127.0.0.1:{gateway.http_port}/health", timeout=10).json()
    assert health["status"] == "ok" and health["backlog"]["pending"] == 1
    assert health["backlog"]["oldest_pending_age_s"] >= 0
    metrics = requests.get(f"http://127.0.0.1:{gateway.http_port}/metrics", timeout=10).json()
    assert metrics["counts"]["accepted"] == 1 and metrics["backlog"]["by_state"]["received"] == 1


def a_report() -> bytes:
    from cxr_gateway import sr as sr_module
    from cxr_gateway.pipeline import header_bytes
    from cxr_model.specs import LABELS

    source = pydicom.dcmread(io.BytesIO(header_bytes(study()["frontal"])))
    result = {"output": dict.fromkeys(LABELS, 0.25), "model": {
        "name": "densenet121-res224-all", "weights": "real", "weights_sha256": "cd" * 32, "engine": "onnxruntime",
        "preprocess": "exact"}}
    return sr_module.encode(sr_module.build_sr(source, result, allow_stand_in=False))


@pytest.mark.parametrize("accepted", [None, [ImplicitVRLittleEndian]], ids=["explicit VR as built", "implicit VR only"])
def test_c_store_delivery_to_a_real_scp_and_a_down_destination_raises(accepted):
    """The SR's bytes go out as built where the destination takes explicit VR; re-encoded where it takes only
    implicit VR; either way the destination holds the same document."""
    report = a_report()
    destination = DestinationScp(transfer_syntaxes=accepted)
    try:
        CStoreSender(Destination(ae_title="DEST", host="127.0.0.1", port=destination.port), "CXR_GW").send(report)
        (received,) = destination.received
        sent = pydicom.dcmread(io.BytesIO(report))
        assert received.SOPInstanceUID == sent.SOPInstanceUID
        assert received.file_meta.TransferSyntaxUID == (accepted or [ExplicitVRLittleEndian])[0]
        assert received == sent  # every element, nested content included
    finally:
        destination.stop()
    with pytest.raises(DeliveryError):
        CStoreSender(Destination(ae_title="DEST", host="127.0.0.1", port=destination.port), "CXR_GW").send(report)


@pytest.mark.parametrize("accepted", [None, [ImplicitVRLittleEndian]], ids=["explicit VR as built", "implicit VR only"])
def test_a_heatmap_secondary_capture_is_delivered_by_c_store(accepted):
    from cxr_gateway.heatmaps import build_heatmap
    from tests.unit.test_gateway_heatmaps import overlay_png

    source = pydicom.dcmread(io.BytesIO(study()["frontal"]), stop_before_pixels=True)
    result = {"job_id": "job-1", "output": {"Effusion": 0.8}, "model": {
        "name": "densenet121-res224-all", "weights": "real", "weights_sha256": "ab" * 32, "engine": "onnxruntime",
        "preprocess": "exact"}}
    image = build_heatmap(source, result, "Effusion", 1, overlay_png())
    destination = DestinationScp(transfer_syntaxes=accepted)
    try:
        CStoreSender(Destination(ae_title="DEST", host="127.0.0.1", port=destination.port), "CXR_GW").send(image)
        (received,) = destination.received
        sent = pydicom.dcmread(io.BytesIO(image))
        assert received.SOPInstanceUID == sent.SOPInstanceUID and received.StudyInstanceUID == source.StudyInstanceUID
        assert (received.pixel_array == sent.pixel_array).all()
    finally:
        destination.stop()


def test_stow_rs_delivery_to_a_dicomweb_server(gateway):
    """The gateway's own STOW-RS endpoint stands in for a PACS's DICOMweb: the SR arrives as one part."""
    report = a_report()
    url = f"http://127.0.0.1:{gateway.http_port}/studies"
    StowSender(Destination(url=url, headers={"x-api-key": TOKEN})).send(report)
    assert gateway.metrics.snapshot()["skipped_by_reason"] == {"non-image SOP class": 1}
    with pytest.raises(DeliveryError):
        StowSender(Destination(url=url, headers={"x-api-key": "wrong"})).send(report)


def self_signed(folder):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def test_dicom_tls_and_https(tmp_path):
    import ssl

    cert, key = self_signed(tmp_path)
    config = GatewayConfig(host="127.0.0.1", dicom_port=0, http_port=0, allowed_aets=["PACS_A"],
                           stow_tokens=[TOKEN], store_path=str(tmp_path / "s.sqlite3"), tls_cert=str(cert),
                           tls_key=str(key))
    gateway = Gateway(config, client=object(), sender=None)
    gateway.start(process=False)
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        ae = AE(ae_title="PACS_A")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", gateway.dicom_port, ae_title=config.ae_title, tls_args=(client, "localhost"))
        assert assoc.is_established and assoc.send_c_echo().Status == 0x0000
        assoc.release()
        plain = AE(ae_title="PACS_A")
        plain.add_requested_context(Verification)
        assert not plain.associate("127.0.0.1", gateway.dicom_port, ae_title=config.ae_title).is_established
        health = requests.get(f"https://localhost:{gateway.http_port}/health", verify=str(cert), timeout=10)
        assert health.status_code == 200 and gateway.ready_info()["stow_url"].startswith("https://")
    finally:
        gateway.stop()


@pytest.mark.parametrize("client_certificate", [False, True], ids=["server-authenticated", "mutual"])
def test_c_store_delivery_over_dicom_tls(tmp_path, client_certificate):
    """--destination-tls: the SR reaches a TLS Storage SCP on loopback whose certificate the gateway verifies against
    destination_tls_ca (host name checked); with tls_cert the gateway presents its own to a destination that
    requires one. Without the CA the destination is not trusted: nothing is sent, the item is retried."""
    import ssl

    cert, key = self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    if client_certificate:
        server.load_verify_locations(cert)
        server.verify_mode = ssl.CERT_REQUIRED
    destination = DestinationScp(ssl_context=server)
    common = dict(dicom_port=0, http_port=0, allowed_aets=["PACS_A"], destination=f"DEST@localhost:{destination.port}")
    if client_certificate:
        common.update(tls_cert=str(cert), tls_key=str(key))
    try:
        trusted = Gateway(GatewayConfig(**common, destination_tls_ca=str(cert),
                                        store_path=str(tmp_path / "a.sqlite3")), client=object())
        report = a_report()
        trusted.sender.send(report)
        (received,) = destination.received
        assert received == pydicom.dcmread(io.BytesIO(report))
        untrusted = Gateway(GatewayConfig(**common, destination_tls=True, store_path=str(tmp_path / "b.sqlite3")),
                            client=object())
        with pytest.raises(DeliveryError):
            untrusted.sender.send(a_report())
        plain = Gateway(GatewayConfig(**common, store_path=str(tmp_path / "c.sqlite3")), client=object())
        with pytest.raises(DeliveryError):
            plain.sender.send(a_report())
        assert len(destination.received) == 1
    finally:
        destination.stop()


def test_an_idle_client_on_the_https_port_does_not_block_the_others(tmp_path):
    """A TCP connection that never starts its TLS handshake (a port scanner, a stalled PACS) must not stop the
    STOW-RS and health listener from serving everyone else."""
    import socket

    cert, key = self_signed(tmp_path)
    config = GatewayConfig(host="127.0.0.1", dicom_port=0, http_port=0, allowed_aets=["PACS_A"],
                           stow_tokens=[TOKEN], store_path=str(tmp_path / "s.sqlite3"), tls_cert=str(cert),
                           tls_key=str(key))
    gateway = Gateway(config, client=object(), sender=None)
    gateway.start(process=False)
    idle = socket.create_connection(("127.0.0.1", gateway.http_port))
    try:
        health = requests.get(f"https://localhost:{gateway.http_port}/health", verify=str(cert), timeout=10)
        assert health.status_code == 200
    finally:
        idle.close()
        gateway.stop()


def test_an_idle_client_on_the_dicom_tls_port_does_not_block_the_others(tmp_path):
    """As on the HTTPS port: a connection that never starts its TLS handshake must not stop DICOM TLS for others."""
    import socket
    import ssl

    cert, key = self_signed(tmp_path)
    config = GatewayConfig(host="127.0.0.1", dicom_port=0, http_port=0, allowed_aets=["PACS_A"],
                           stow_tokens=[TOKEN], store_path=str(tmp_path / "s.sqlite3"), tls_cert=str(cert),
                           tls_key=str(key))
    gateway = Gateway(config, client=object(), sender=None)
    gateway.start(process=False)
    idle = socket.create_connection(("127.0.0.1", gateway.dicom_port))
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        client.check_hostname = True
        ae = AE(ae_title="PACS_A")
        ae.add_requested_context(Verification)
        ae.acse_timeout = ae.network_timeout = 10
        assoc = ae.associate("127.0.0.1", gateway.dicom_port, ae_title=config.ae_title, tls_args=(client, "localhost"))
        assert assoc.is_established and assoc.send_c_echo().Status == 0x0000
        assoc.release()
    finally:
        idle.close()
        gateway.stop()
