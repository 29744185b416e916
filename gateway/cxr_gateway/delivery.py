"""Sending an SR to its destination (C-STORE to an AE, or STOW-RS to a DICOMweb URL), and the retry schedule."""
from __future__ import annotations

import io
import uuid

import pydicom
import requests
from pynetdicom import AE
from pynetdicom.sop_class import Comprehensive3DSRStorage
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .config import Destination

STOW_TIMEOUT_S = 60


class DeliveryError(Exception):
    """The destination did not take the SR (down, refused, timed out): try again later."""


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2 x base, 4 x base, ... capped at max_s."""
    return min(max_s, base_s * 2 ** min(attempts, 32))


class CStoreSender:
    def __init__(self, destination: Destination, calling_ae_title: str, ssl_context=None) -> None:
        self.destination, self.calling_ae_title, self.ssl_context = destination, calling_ae_title, ssl_context

    def send(self, data: bytes) -> None:
        dataset = pydicom.dcmread(io.BytesIO(data))
        ae = AE(ae_title=self.calling_ae_title)
        ae.add_requested_context(Comprehensive3DSRStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        tls = (self.ssl_context, self.destination.host) if self.ssl_context else None
        assoc = ae.associate(self.destination.host, self.destination.port, ae_title=self.destination.ae_title,
                             tls_args=tls)
        if not assoc.is_established:
            raise DeliveryError(f"association with {self.destination.describe()} not established "
                                f"({'rejected' if assoc.is_rejected else 'aborted or unreachable'})")
        try:
            status = assoc.send_c_store(dataset)
        finally:
            assoc.release()
        code = getattr(status, "Status", None)
        if code is None:
            raise DeliveryError(f"no C-STORE response from {self.destination.describe()}")
        if code != 0x0000 and not 0xB000 <= code <= 0xBFFF:  # success, or a warning: stored
            raise DeliveryError(f"C-STORE to {self.destination.describe()} answered status 0x{code:04X}")


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
