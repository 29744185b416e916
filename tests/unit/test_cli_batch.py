"""submit-dir's pieces without a server: what a folder scan keeps or skips, the manifest, CSV rows, cxr watch's dedup."""
from __future__ import annotations

import csv
import io
import json

import pytest

from cxr_cli import render
from cxr_cli.api import ApiError
from cxr_cli.batch import Manifest, counts, manifest_scope
from cxr_cli.files import scan_folder
from cxr_cli.watch import events, parse_event

DICOM_HEAD = b"\0" * 128 + b"DICM"
PIXEL_DATA = b"\xe0\x7f\x10\x00OW\x00\x00\x04\x00\x00\x00\x01\x02\x03\x04"


def test_scan_keeps_images_by_content_and_skips_the_rest_with_a_reason(tmp_path):
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "IM0001").write_bytes(DICOM_HEAD + b"\x02\x00\x10\x00" + PIXEL_DATA)  # no extension
    (tmp_path / "series" / "SR0001").write_bytes(DICOM_HEAD + b"\x02\x00\x10\x00UI\x04\x001.2\x00")  # no pixels
    (tmp_path / "DICOMDIR").write_bytes(DICOM_HEAD + PIXEL_DATA)
    (tmp_path / "scan.PNG").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "photo").write_bytes(b"\xff\xd8\xff\xe0")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")  # an image name vouches for it: it fails later, on its own
    (tmp_path / ".cxr-manifest.jsonl").write_text("{}")
    found, skipped = scan_folder(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["empty.png", "photo", "scan.PNG", "series/IM0001"]
    reasons = {p.relative_to(tmp_path).as_posix(): why for p, why in skipped}
    assert set(reasons) == {"DICOMDIR", "notes.txt", "series/SR0001"}
    assert "without pixel data" in reasons["DICOMDIR"] and "without pixel data" in reasons["series/SR0001"]
    assert [p.name for p in scan_folder(tmp_path)[0]] == ["empty.png", "photo", "scan.PNG"]  # not recursive


def test_manifest_survives_a_line_cut_short_and_only_completed_entries_count(tmp_path):
    path = tmp_path / "m.jsonl"
    manifest = Manifest(path)
    manifest.append({"sha256": "aa", "file": "a.png", "status": "COMPLETED", "result": {"output": {}}, "exit_code": 0})
    manifest.append({"sha256": "bb", "file": "b.png", "status": "FAILED", "error": "bad", "exit_code": 1})
    with path.open("a") as handle:
        handle.write('{"sha256": "cc", "status": "COMPL')  # a crash mid-write
    again = Manifest(path)
    assert again.completed("aa")["file"] == "a.png" and "exit_code" not in again.completed("aa")
    assert again.completed("bb") is None and again.completed("cc") is None  # failures are retried on resume


def test_manifest_answers_only_for_the_model_asked_for(tmp_path):
    served = {"models": [{"name": name, "weights_sha256": sha, "model_id": f"{name}@{sha[:12]}/exact"}
                         for name, sha in (("densenet121-res224-chex", "c" * 64), ("densenet121-res224-nih", "d" * 64))]}
    health = {"model": {"name": "densenet121-res224-all", "weights_sha256": "a" * 64, "preprocess": "exact"}}
    chex = manifest_scope("http://x", health, served, "densenet121-res224-chex")
    path = tmp_path / "m.jsonl"
    Manifest(path, chex).append({"sha256": "aa", "file": "a.png", "status": "COMPLETED", "result": {"output": {}},
                                 "exit_code": 0})
    assert Manifest(path, chex).completed("aa")["file"] == "a.png"
    assert Manifest(path, manifest_scope("http://x", health)).completed("aa") is None  # the default model
    assert Manifest(path, manifest_scope("http://x", health, served, "densenet121-res224-nih")).completed("aa") is None
    with pytest.raises(ApiError, match="does not serve model 'densenet121-res224-pc'"):
        manifest_scope("http://x", health, served, "densenet121-res224-pc")


def test_counts_and_csv_have_one_row_per_file_with_the_scores_and_the_model():
    model = {"name": "densenet121-res224-all", "weights": "random-init", "weights_sha256": "ab", "engine": "onnxruntime",
             "preprocess": "fast"}
    result = {"top_label": "Mass", "output": {"Mass": 0.9, "Edema": 0.1}, "model": model}
    rows = [{"file": "a.png", "status": "COMPLETED", "id": "j1", "result": result, "exit_code": 0},
            {"file": "b.png", "status": "COMPLETED", "id": "j2", "cached": True, "result": result, "exit_code": 0,
             "from_manifest": True},
            {"file": "c.png", "status": "ERROR", "error": "415", "exit_code": 3}]
    assert counts(rows, skipped=2) == {"completed": 1, "cached": 1, "failed": 1, "skipped": 2, "from_manifest": 1}
    table = list(csv.DictReader(io.StringIO(render.csv_text(rows + [{"file": "n.txt", "status": "SKIPPED",
                                                                     "reason": "not an image"}]))))
    assert [row["file"] for row in table] == ["a.png", "b.png", "c.png", "n.txt"]
    assert table[0]["Mass"] == "0.9" and table[0]["model_weights"] == "random-init" and table[0]["top_label"] == "Mass"
    assert table[2]["error"] == "415" and table[3]["error"] == "not an image" and table[3]["Mass"] == ""


class FakeSqs:
    def __init__(self, bodies):
        self.batches, self.deleted = [[{"Body": b, "ReceiptHandle": str(i)} for i, b in enumerate(bodies)]], []

    def receive_message(self, **_):
        return {"Messages": self.batches.pop(0) if self.batches else []}

    def delete_message(self, QueueUrl, ReceiptHandle):  # noqa: N803 - boto3's names
        self.deleted.append(ReceiptHandle)


def test_watch_reads_raw_and_enveloped_events_once_each_and_deletes_everything():
    event = {"event_id": "j1:COMPLETED", "job_id": "j1", "status": "COMPLETED"}
    envelope = {"Type": "Notification", "Message": json.dumps(event)}
    sqs = FakeSqs([json.dumps(event), json.dumps(envelope), "garbage", json.dumps({"event_id": "j2:FAILED"})])
    now = iter(range(0, 100, 10))
    got = list(events(sqs, "q", timeout_s=25, clock=lambda: next(now)))
    assert [e["event_id"] for e in got] == ["j1:COMPLETED", "j2:FAILED"] and len(sqs.deleted) == 4
    assert parse_event("[]") is None and parse_event(json.dumps(envelope)) == event
