"""cxr CLI without a server: score ranking and decisions at the calibrated threshold, tables, file sniffing, options."""
from __future__ import annotations

import io
import re
import struct
import zlib

import pytest

from cxr_cli import exit_codes, render
from cxr_cli.__main__ import build_parser, main
from cxr_cli.files import LocalFileError, find_images, read_image, sniff_media_type

LABELS = ["Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis",
          "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia", "Lung Lesion",
          "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum"]


def make_result(weights: str = "random-init") -> dict:
    scores = [round((i * 7 % 18) / 17, 4) for i in range(18)]  # 18 distinct values spread over [0, 1]
    scores[3], scores[5] = 0.5, 0.4999  # both sides of the threshold, to the digit
    output = dict(zip(LABELS, scores))
    return {"job_id": "j1", "top_label": max(output, key=output.get), "output": output,
            "model": {"name": "densenet121-res224-all", "weights": weights, "engine": "onnxruntime"}}


def rows_of(text: str) -> list[tuple[int, str, float, str]]:
    pattern = re.compile(r"^\s*(\d+)\s+(\S.*?)\s+(\d\.\d{3})\s+(positive|negative)\b")
    return [(int(m[1]), m[2], float(m[3]), m[4]) for m in map(pattern.match, text.splitlines()) if m]


def test_score_table_is_sorted_top_label_first_with_decisions_at_0_5():
    result = make_result()
    rows = rows_of(render.score_table(result, io.StringIO()))
    assert len(rows) == 18 and [r[0] for r in rows] == list(range(1, 19))
    assert rows[0][1] == result["top_label"]
    scores = [result["output"][label] for _, label, _, _ in rows]
    assert scores == sorted(scores, reverse=True)
    decisions = {label: decision for _, label, _, decision in rows}
    assert decisions[LABELS[3]] == "positive" and decisions[LABELS[5]] == "negative"  # 0.5 vs 0.4999
    assert all(decisions[label] == ("positive" if score >= 0.5 else "negative")
               for label, score in result["output"].items())


def test_random_init_warning_only_for_random_weights():
    assert render.RANDOM_INIT_WARNING in render.score_table(make_result("random-init"), io.StringIO())
    assert "WARNING" not in render.score_table(make_result("pretrained"), io.StringIO())


def test_ascii_terminal_gets_ascii_bars():
    ascii_stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    render.score_table(make_result(), ascii_stream).encode("ascii")  # raises if a block character slipped in


def test_ties_are_ordered_by_label():
    assert render.ranked({"b": 0.5, "a": 0.5, "c": 0.9}) == [("c", 0.9), ("a", 0.5), ("b", 0.5)]


def test_summary_table_has_one_aligned_row_per_file_and_the_warning():
    records = [{"file": "a.png", "id": "id-a", "status": "COMPLETED", "cached": True, "result": make_result()},
               {"file": "b.dcm", "status": "ERROR", "error": "POST /v1/jobs: 415"}]
    lines = render.summary_table(records).splitlines()
    assert lines[0].split()[:2] == ["file", "status"] and set(lines[1]) <= {"-", " "}
    assert "COMPLETED (cached)" in lines[2] and lines[2].endswith("id-a")
    assert lines[3].startswith("b.dcm") and "ERROR" in lines[3]
    assert lines[-1] == f"WARNING: {render.RANDOM_INIT_WARNING}"


def test_progress_bar_off_a_terminal_prints_a_line_per_change():
    stream = io.StringIO()
    bar = render.ProgressBar(3, stream)
    for done in (0, 1, 1, 3):
        bar.update(done, 0, 0.5)
    assert [line.split("]")[1].split()[0] for line in stream.getvalue().splitlines()] == ["0/3", "1/3", "3/3"]


def _png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


def test_media_type_comes_from_the_bytes_then_the_extension(tmp_path):
    assert sniff_media_type(_png()) == "image/png"
    assert sniff_media_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_media_type(b"\x00" * 128 + b"DICM" + b"\x02\x00") == "application/dicom"
    renamed = tmp_path / "scan.dcm"
    renamed.write_bytes(_png())
    assert read_image(renamed).media_type == "image/png"  # bytes win over a wrong extension
    bare = tmp_path / "no_preamble.dcm"
    bare.write_bytes(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100")
    assert read_image(bare).media_type == "application/dicom"
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(LocalFileError, match="not a PNG, JPEG or DICOM"):
        read_image(text)
    with pytest.raises(LocalFileError, match="no such file"):
        read_image(tmp_path / "absent.png")


def test_find_images_keeps_image_extensions_only(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.dcm", "d.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.jpeg").write_bytes(b"x")
    assert [p.name for p in find_images(tmp_path)] == ["a.jpg", "b.PNG", "c.dcm"]
    assert [p.name for p in find_images(tmp_path, recursive=True)] == ["a.jpg", "b.PNG", "c.dcm", "e.jpeg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(LocalFileError, match="no PNG, JPEG or DICOM"):
        find_images(tmp_path / "empty")
    with pytest.raises(LocalFileError, match="not a directory"):
        find_images(tmp_path / "absent")


def test_endpoint_and_key_come_from_the_environment_unless_flags_say_otherwise(monkeypatch):
    monkeypatch.delenv("CXR_ENDPOINT", raising=False)
    monkeypatch.delenv("CXR_API_KEY", raising=False)
    args = build_parser().parse_args(["status", "x"])
    assert args.endpoint == "http://127.0.0.1:8080" and args.api_key is None
    monkeypatch.setenv("CXR_ENDPOINT", "http://env:1")
    monkeypatch.setenv("CXR_API_KEY", "env-key")
    args = build_parser().parse_args(["status", "x"])
    assert (args.endpoint, args.api_key) == ("http://env:1", "env-key")
    args = build_parser().parse_args(["result", "x", "--endpoint", "http://flag:2", "--api-key", "flag-key"])
    assert (args.endpoint, args.api_key) == ("http://flag:2", "flag-key")


def test_help_documents_every_exit_code(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for code in (exit_codes.OK, exit_codes.JOB_FAILED, exit_codes.USAGE, exit_codes.API_ERROR, exit_codes.TIMEOUT,
                 exit_codes.NOT_FOUND, exit_codes.NOT_READY):
        assert re.search(rf"^\s+{code}\s+\S", text, re.M), code


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["submit"])
    assert exited.value.code == exit_codes.USAGE
    assert main(["submit-dir", "/nonexistent-folder-for-cxr"]) == exit_codes.USAGE
