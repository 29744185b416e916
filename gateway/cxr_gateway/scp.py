"""The DICOM side: a Storage SCP (and C-ECHO) for the configured calling AE titles and source networks."""
from __future__ import annotations

import ipaddress
import logging
import threading

from pydicom.filereader import read_dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from .receiving import FAILED, Receiver

LOG = logging.getLogger("cxr_gateway")
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC210
STATUS_OUT_OF_RESOURCES = 0xA700
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double float and integer pixel data


class _FilteredServer(ThreadedAssociationServer):
    """Refuses TCP connections from outside the allowed source networks before any DICOM is read."""
    allowed_networks: list = []

    def get_request(self):
        """As pynetdicom's, but the TLS handshake runs in the association's thread (on its first read), not in the
        accept loop, where one client that never sends its ClientHello would block every other association."""
        client_socket, address = self.socket.accept()
        if self.ssl_context:
            client_socket = self.ssl_context.wrap_socket(client_socket, server_side=True,
                                                         do_handshake_on_connect=False)
        return client_socket, address

    def verify_request(self, request, client_address) -> bool:
        if not self.allowed_networks:
            return True
        address = ipaddress.ip_address(client_address[0])
        allowed = any(address in network for network in self.allowed_networks)
        if not allowed:
            LOG.warning("DICOM connection from %s refused: not in the allowed networks", client_address[0])
        return allowed


def make_ae(ae_title: str, allowed_aets: list[str]) -> AE:
    ae = AE(ae_title=ae_title)
    ae.require_calling_aet = list(allowed_aets)  # others: A-ASSOCIATE-RJ, calling AE title not recognised
    ae.require_called_aet = True  # a PACS that names another node: A-ASSOCIATE-RJ, called AE title not recognised
    ae.maximum_pdu_size = 0  # no limit
    ae.add_supported_context(Verification)
    # every storage SOP class (a PACS routes whole studies: what is not a chest radiograph is taken and skipped),
    # in every transfer syntax as proposed: the gateway never asks the sender to transcode
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    return ae


class StorageScp:
    def __init__(self, receiver: Receiver, ae_title: str, allowed_aets: list[str], allowed_networks: list,
                 ssl_context=None) -> None:
        self.receiver = receiver
        self.ae = make_ae(ae_title, allowed_aets)
        self.allowed_networks, self.ssl_context = allowed_networks, ssl_context
        self.server: _FilteredServer | None = None

    def _on_store(self, event) -> int:
        try:
            header, parts = _received_file(event)
        except Exception:  # noqa: BLE001 - a dataset pynetdicom cannot hand over: the sender sees a failure
            LOG.exception("C-STORE dataset unreadable")
            return STATUS_CANNOT_UNDERSTAND
        try:
            outcome = (self.receiver.receive(parts[0]) if header is None
                       else self.receiver.receive_parsed(header, parts))
        except Exception:  # noqa: BLE001 - the spool could not take it: not stored, the sender must retry
            LOG.exception("C-STORE not spooled")
            return STATUS_OUT_OF_RESOURCES
        return STATUS_CANNOT_UNDERSTAND if outcome.status == FAILED else STATUS_SUCCESS

    def start(self, host: str, port: int) -> int:
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        server = self.ae.make_server((host, port), ssl_context=self.ssl_context, evt_handlers=handlers,
                                     server_class=_FilteredServer)
        server.allowed_networks = self.allowed_networks
        self.ae._servers.append(server)  # as start_server does: shutdown() takes it off the AE's list
        threading.Thread(target=server.serve_forever, name="dicom-scp", daemon=True).start()
        self.server = server
        return server.server_address[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()  # also closes its socket


def _received_file(event) -> tuple:
    """(header without pixels, the file's bytes in pieces) of a C-STORE request: its header read from the received
    dataset in the negotiated syntax, and the file as the file meta plus a view of that dataset, never joined into
    a copy of several megabytes. A deflated dataset must be inflated to be read: (None, [the file's bytes])."""
    syntax = event.context.transfer_syntax
    if syntax == DeflatedExplicitVRLittleEndian:
        return None, [event.encoded_dataset(include_meta=True)]
    received = event.request.DataSet  # the BytesIO pynetdicom wrote the P-DATA fragments into
    received.seek(0)
    header = read_dataset(received, syntax.is_implicit_VR, syntax.is_little_endian,
                          stop_when=lambda tag, vr, length: tag in _PIXEL_TAGS)
    header.file_meta = event.file_meta
    prefix = b"\0" * 128 + b"DICM" + encode_file_meta(event.file_meta)
    return header, [prefix, received.getbuffer()]
