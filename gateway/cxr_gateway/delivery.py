"""Sending an SR to its destination (C-STORE to an AE, or STOW-RS to a DICOMweb URL), and the retry schedule."""
from __future__ import annotations

import io
import os
import uuid
from contextlib import contextmanager

import pydicom
import requests
from pynetdicom import AE, _config
from pynetdicom.sop_class import Comprehensive3DSRStorage, SecondaryCaptureImageStorage
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .config import Destination

STOW_TIMEOUT_S = 60
# send_c_store(path) then sends the file's encoded dataset as it is, without decoding and re-encoding it (~90 of the
# ~100 ms CPU an SR cost): it applies only to sends given a path, which in this process are the SRs below
_config.STORE_SEND_CHUNKED_DATASET = True


BUNDLE_MAGIC = b"CXRGW-BUNDLE-1\0"


def pack(instances: list[bytes]) -> bytes:
    """Instances delivered together (the SR and its heatmaps) as one stored value; a single one stays as it is."""
    if len(instances) == 1:
        return instances[0]
    return BUNDLE_MAGIC + b"".join(len(data).to_bytes(8, "big") + data for data in instances)


def unpack(payload: bytes) -> list[bytes]:
    if not payload.startswith(BUNDLE_MAGIC):
        return [payload]
    instances, offset = [], len(BUNDLE_MAGIC)
    while offset < len(payload):
        size = int.from_bytes(payload[offset:offset + 8], "big")
        instances.append(payload[offset + 8:offset + 8 + size])
        offset += 8 + size
    return instances


class DeliveryError(Exception):
    """The destination did not take the SR (down, refused, timed out): try again later."""


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2 x base, 4 x base, ... capped at max_s."""
    return min(max_s, base_s * 2 ** min(attempts, 32))


class CStoreSender:
    def __init__(self, destination: Destination, calling_ae_title: str, ssl_context=None) -> None:
        self.destination, self.calling_ae_title, self.ssl_context = destination, calling_ae_title, ssl_context

    def send(self, data: bytes) -> None:
        ae = AE(ae_title=self.calling_ae_title)
        # two contexts per class, not one with two syntaxes: an acceptor that takes explicit VR then takes it even
        # when it prefers implicit, and the instance goes out as built
        for sop_class in (Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian])
            ae.add_requested_context(sop_class, [ImplicitVRLittleEndian])
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        tls = (self.ssl_context, self.destination.host) if self.ssl_context else None
        assoc = ae.associate(self.destination.host, self.destination.port, ae_title=self.destination.ae_title,
                             tls_args=tls)
        if not assoc.is_established:
            raise DeliveryError(f"association with {self.destination.describe()} not established "
                                f"({'rejected' if assoc.is_rejected else 'aborted or unreachable'})")
        try:
            try:
                with _in_memory_file(data) as path:  # the bytes as built (explicit VR little endian)
                    status = assoc.send_c_store(path)
            except ValueError:  # no context for them as they are (the destination took implicit VR only)
                status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(data)))  # pynetdicom re-encodes
        finally:
            assoc.release()
        code = getattr(status, "Status", None)
        if code is None:
            raise DeliveryError(f"no C-STORE response from {self.destination.describe()}")
        if code != 0x0000 and not 0xB000 <= code <= 0xBFFF:  # success, or a warning: stored
            raise DeliveryError(f"C-STORE to {self.destination.describe()} answered status 0x{code:04X}")


@contextmanager
def _in_memory_file(data: bytes):
    """A path to the bytes that never touches a disk (an SR names the patient): a Linux memfd, closed after use."""
    descriptor = os.memfd_create("cxr-gateway-sr", os.MFD_CLOEXEC)
    try:
        os.write(descriptor, data)
        yield f"/proc/self/fd/{descriptor}"
    finally:
        os.close(descriptor)


class StowSender:
    def __init__(self, destination: Destination, session: requests.Session | None = None) -> None:
        self.destination, self.session = destination, session or requests.Session()

    def send(self, data: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
                + f"\r\n--{boundary}--\r\n".encode())
        headers = {**self.destination.headers, "Accept": "application/dicom+json",
                   "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
        try:
            response = self.session.post(self.destination.url, data=body, headers=headers, timeout=STOW_TIMEOUT_S)
        except requests.RequestException as error:
            raise DeliveryError(f"STOW-RS to {self.destination.url}: {type(error).__name__}") from error
        if response.status_code not in (200, 202):
            raise DeliveryError(f"STOW-RS to {self.destination.url} answered {response.status_code}")
        if response.status_code == 202 and _has_failures(response):
            raise DeliveryError(f"STOW-RS to {self.destination.url} refused the SR (FailedSOPSequence)")


def _has_failures(response: requests.Response) -> bool:
    try:
        return "00081198" in (response.json() or {})
    except ValueError:
        return False


def make_sender(destination: Destination | None, calling_ae_title: str, ssl_context=None):
    if destination is None:
        return None
    if destination.url:
        return StowSender(destination)
    return CStoreSender(destination, calling_ae_title, ssl_context)
