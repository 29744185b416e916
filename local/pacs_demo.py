"""`make pacs-demo`: a real Orthanc, the local stack and its DICOM gateway; the sample radiographs stored in Orthanc as
one study of a made-up patient, routed to the gateway, and the SRs filed back into that study for a person to open in
Orthanc's web UI.

`python local/pacs_demo.py [--model-dir DIR] [--screenshot PNG] [--exit]`: --screenshot saves headless Chromium's
view of the study page in Orthanc Explorer; --exit stops everything once the SRs are in (else Ctrl-C does).
"""
from __future__ import annotations

import argparse
import io
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from cxr_model.notice import INTENDED_USE

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

XRAYS = REPO.parent / "shared" / "data" / "xrays"
DEMO_PATIENT = {"PatientName": "DEMO^CHEST^XRAY", "PatientID": "DEMO-0001", "PatientBirthDate": "19700101",
                "PatientSex": "O", "AccessionNumber": "DEMO-ACC-1", "StudyID": "DEMO", "StudyDate": "20261205",
                "StudyTime": "090000", "StudyDescription": "CHEST PA (cxr-serverless gateway demo)",
                "ReferringPhysicianName": "", "InstitutionName": "Demo Hospital"}
SR_DEADLINE_S = 300


def as_cr(dataset, study_uid: str, number: int, description: str):
    """The dataset filed as a CR chest PA of the demo patient, in the demo study, with fresh series/instance UIDs."""
    from pydicom.uid import ComputedRadiographyImageStorage, generate_uid

    for keyword, value in DEMO_PATIENT.items():
        setattr(dataset, keyword, value)
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID = ComputedRadiographyImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study_uid, generate_uid()
    dataset.Modality, dataset.ViewPosition, dataset.BodyPartExamined = "CR", "PA", "CHEST"
    dataset.SeriesNumber, dataset.InstanceNumber, dataset.SeriesDescription = number, 1, description[:64]
    return dataset


def encode(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def sample_study() -> tuple[str, list[tuple[str, bytes]]]:
    """(StudyInstanceUID, [(what, DICOM bytes)]): each PNG/JPEG wrapped as a CR, each DICOM sample re-filed as a CR
    of the demo patient, and one DICOM sample left as Secondary Capture so the study also shows a skip."""
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.uid import generate_uid

    from tests.dicom_factory import native_dataset

    study_uid, instances = generate_uid(), []
    for number, path in enumerate(sorted(XRAYS.iterdir()), start=1):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            pixels = np.asarray(Image.open(path).convert("L"), dtype=np.uint8)
            dataset = as_cr(native_dataset(pixels, bits_stored=8), study_uid, number, f"{path.name} as CR")
            instances.append((f"{path.name} (wrapped as CR)", encode(dataset)))
        elif path.suffix.lower() == ".dcm":
            dataset = as_cr(pydicom.dcmread(path), study_uid, number, f"{path.name} as CR")
            instances.append((f"{path.name} (re-filed as CR)", encode(dataset)))
    original = sorted(XRAYS.glob("*.dcm"))[0]
    secondary = pydicom.dcmread(original)
    sop_class = secondary.SOPClassUID
    secondary = as_cr(secondary, study_uid, 99, f"{original.name} as Secondary Capture")
    secondary.file_meta.MediaStorageSOPClassUID = secondary.SOPClassUID = sop_class
    instances.append((f"{original.name} (kept as {sop_class.name}: the gateway skips it)", encode(secondary)))
    return study_uid, instances


def screenshot(url: str, path: Path) -> None:
    """Headless Chromium's view of `url` (Orthanc Explorer renders with JavaScript: give it time)."""
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,1400", "--virtual-time-budget=8000", f"--screenshot={path}", url],
                   check=True, capture_output=True, timeout=120)


def banner(lines: list[str]) -> str:
    width = max(map(len, lines)) + 4
    return "\n".join(["!" * width, *[f"! {line.ljust(width - 4)} !" for line in lines], "!" * width])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--model-dir", default=None, help="model artifacts (make model); default: the tests' stand-in")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--screenshot", type=Path, help="save Orthanc Explorer's study page here (headless Chromium)")
    parser.add_argument("--exit", action="store_true", help="stop once the SRs are in Orthanc")
    args = parser.parse_args(argv)

    import requests

    from cxr_local.waiting import wait_until
    from tests.pacs.gateway_stack import GATEWAY_MODALITY, start_pacs_stack

    work = Path(tempfile.mkdtemp(prefix="cxr-pacs-demo-"))
    print(f"starting Orthanc, the local stack and the gateway (logs under {work}) ...", flush=True)
    stack_args = ("--model-dir", args.model_dir) if args.model_dir else ()
    pacs = start_pacs_stack(work, allow_stand_in=True, stack_args=stack_args, workers=args.workers)
    try:
        model = requests.get(f"{pacs.stack.url}/v1/ops/health", timeout=30).json().get("model", {})
        if model.get("weights") != "real":
            print(banner([f"STAND-IN WEIGHTS ({model.get('weights')}): the demo runs the gateway with",
                          "--gateway-allow-stand-in, so its SRs reach Orthanc, marked STAND-IN in the SR.",
                          "Their scores are meaningless. NOT FOR CLINICAL USE."]), flush=True)
        study_uid, instances = sample_study()
        for what, data in instances:
            pacs.orthanc.upload(data)
            print(f"  stored in Orthanc: {what}")
        study_id = pacs.orthanc.find_study(study_uid)
        sent = len(instances)
        print(f"routing the study to the gateway: POST /modalities/{GATEWAY_MODALITY}/store ...", flush=True)
        pacs.orthanc.store_to_modality(GATEWAY_MODALITY, [study_id])

        def settled():
            metrics = pacs.gateway.metrics()
            return metrics if metrics["backlog"]["pending"] == 0 and metrics["counts"].get("received", 0) >= sent \
                else None

        metrics = wait_until(settled, SR_DEADLINE_S, interval_s=0.5, what="the gateway's backlog drained")
        srs = len(pacs.orthanc.study_instances(study_id)) - sent
        print(f"gateway: {metrics['counts']}; skipped: {metrics['skipped_by_reason']}")
        study_url = f"{pacs.orthanc.explorer_url}#study?uuid={study_id}"
        print(f"\n{srs} SR(s) filed in the study. Open Orthanc's web UI:\n  {study_url}\n"
              f"  (Orthanc Explorer: {pacs.orthanc.explorer_url}; the SRs are the series of modality SR, number 7701, "
              f"'CXR AI ...'.)\n{INTENDED_USE}\n", flush=True)
        if args.screenshot:
            screenshot(study_url, args.screenshot)
            print(f"screenshot: {args.screenshot}")
        if not args.exit:
            print("Ctrl-C stops Orthanc, the gateway and the stack.", flush=True)
            stopped = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stopped.set())
            try:
                stopped.wait()
            except KeyboardInterrupt:
                pass
    finally:
        pacs.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
