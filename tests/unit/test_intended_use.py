"""One standing statement of intended use: worded once, carried by every identity, shown by the CLI as the API says."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

from cxr_cli import render
from cxr_model import INTENDED_USE, read_identity
from tests.model_support import MODEL_NAME

REPO = Path(__file__).resolve().parents[2]
# the statement itself; a 64-character DICOM label ("... - research use only") is a tag, not a second wording
STATEMENT = re.compile(r"not a medical device", re.I)
WORDED_HERE = "layers/model/python/cxr_model/notice.py"


def test_the_statement_says_research_use_only_not_a_medical_device():
    assert STATEMENT.search(INTENDED_USE) and "not a medical device" in INTENDED_USE.lower()
    assert "research use only" in INTENDED_USE.lower()


def test_it_is_worded_in_one_file_only():
    product = [path for folder in ("layers", "functions", "clients", "local", "modelbuild", "infra", "worker", "gateway")
               for path in (REPO / folder).rglob("*") if path.suffix in (".py", ".js", ".html", ".yaml", ".json")
               and "__pycache__" not in path.parts and "weights" not in path.parts]
    worded = [path.relative_to(REPO).as_posix() for path in product + [REPO / "template.yaml"]
              if STATEMENT.search(path.read_text(errors="replace"))]
    assert len(product) > 50 and worded == [WORDED_HERE]


def test_every_identity_carries_it_whatever_the_weights(tmp_path):
    """read_identity (submit, poll, every result's "model") from the build's provenance record alone."""
    for kind in ("real", "provided", "random-init"):
        (tmp_path / f"{MODEL_NAME}.weights.json").write_text(json.dumps({"weights": kind, "sha256": "ab" * 32}))
        for engine in ("onnxruntime", "torch"):
            assert read_identity(str(tmp_path), MODEL_NAME, engine=engine)["intended_use"] == INTENDED_USE


def test_the_cli_prints_the_services_wording_with_each_table():
    result = {"job_id": "j", "top_label": "Mass", "output": {"Mass": 0.7, "Nodule": 0.2},
              "model": {"name": MODEL_NAME, "weights": "real", "engine": "onnxruntime", "intended_use": INTENDED_USE}}
    assert render.score_table(result, io.StringIO()).splitlines()[-1] == INTENDED_USE
    summary = render.summary_table([{"file": "a.png", "status": "COMPLETED", "result": result, "id": "j"}])
    assert summary.splitlines()[-1] == INTENDED_USE
