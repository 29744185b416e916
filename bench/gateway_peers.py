"""The gateway's peers in the gateway-overhead study, each in a process of its own so their CPU is not the gateway's.

`python -m bench.gateway_peers service`: a stand-in for the service's public API (presigned upload, job, long poll,
result; every job COMPLETED at once with the scores of a `random-init` model, so the gateway needs its
--allow-stand-in) and a Storage SCP taking the SRs; prints its ports as one JSON line. It stands in for the service
only so the gateway's own CPU can be read alone: the service's CPU is the worker's side of the ratio.
`python -m bench.gateway_peers send PORT AE FILE...`: C-STORE the files as stored (not re-encoded) in one
association, P-DATA fragments of --pdu bytes (Orthanc's default maximum PDU is 16 KiB), as a PACS routing a study.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = {"name": "densenet121-res224-all", "weights": "random-init", "weights_sha256": "0" * 64,
         "engine": "onnxruntime", "preprocess": "exact"}


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drain(self) -> int:
        remaining = int(self.headers.get("Content-Length") or 0)
        total = remaining
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
        return total

    def do_POST(self) -> None:
        self._drain()
        if self.path == "/v1/uploads":
            upload_id = uuid.uuid4().hex
            host, port = self.server.server_address[:2]
            self._answer(201, {"upload_id": upload_id, "url": f"http://{host}:{port}/s3/{upload_id}", "method": "PUT",
                               "headers": {"Content-Type": "application/dicom"}})
        elif self.path == "/v1/jobs":
            self._answer(201, {"id": uuid.uuid4().hex, "status": "QUEUED"})
        else:
            self._answer(404, {"error": "no route"})

    def do_PUT(self) -> None:
        self._drain()
        self._answer(200, {})

    def do_GET(self) -> None:
        from cxr_model.specs import LABELS

        job_id = self.path.split("/")[3].split("?")[0]
        if self.path.endswith("/result"):
            scores = {label: round(0.05 + 0.9 * index / len(LABELS), 4) for index, label in enumerate(LABELS)}
            self._answer(200, {"job_id": job_id, "output": scores, "model": MODEL})
        else:
            self._answer(200, {"id": job_id, "status": "COMPLETED"})


def serve() -> int:
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Comprehensive3DSRStorage

    api = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    ae = AE(ae_title="BENCH_PACS")
    ae.add_supported_context(Comprehensive3DSRStorage)
    scp = ae.start_server(("127.0.0.1", 0), block=False,
                          evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])
    print(json.dumps({"api_port": api.server_address[1], "scp_port": scp.server_address[1]}), flush=True)
    sys.stdin.read()  # until the study closes our stdin
    return 0


def send(port: int, ae_title: str, files: list[str], pdu: int) -> int:
    import pydicom
    from pynetdicom import AE, _config
    from pynetdicom.dimse import DIMSEServiceProvider

    _config.STORE_SEND_CHUNKED_DATASET = True  # the files' bytes as stored, as a PACS sends them (no re-encoding)
    DIMSEServiceProvider.maximum_pdu_size = property(lambda self: pdu)  # fragment as a PACS with this max PDU does
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
    ae = AE(ae_title="BENCH_SENDER")
    for header in headers:
        ae.add_requested_context(header.SOPClassUID, header.file_meta.TransferSyntaxUID)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
    if not assoc.is_established:
        print("association refused", file=sys.stderr)
        return 1
    statuses = [assoc.send_c_store(path).Status for path in files]
    assoc.release()
    print(json.dumps({"statuses": statuses}), flush=True)
    return 0 if all(status == 0 for status in statuses) else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    sub.add_parser("service")
    sender = sub.add_parser("send")
    sender.add_argument("port", type=int)
    sender.add_argument("ae_title")
    sender.add_argument("files", nargs="+")
    sender.add_argument("--pdu", type=int, default=16384)
    args = parser.parse_args(argv)
    if args.role == "service":
        return serve()
    return send(args.port, args.ae_title, args.files, args.pdu)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
