"""One standing statement of intended use: worded once, carried by every identity, shown by the CLI as the API says."""
from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

from cxr_cli import render
from cxr_model import INTENDED_USE, read_identity
from tests.model_support import MODEL_NAME, built_model_dir

REPO = Path(__file__).resolve().parents[2]
STATEMENT = re.compile(r"research[- ]use only|not a medical device", re.I)
WORDED_HERE = "layers/model/python/cxr_model/notice.py"


def test_the_statement_says_research_use_only_not_a_medical_device():
    assert STATEMENT.search(INTENDED_USE) and "not a medical device" in INTENDED_USE.lower()
    assert "research use only" in INTENDED_USE.lower()


def test_it_is_worded_in_one_file_only():
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    product = [path for path in tracked if not path.startswith(("tests/", "bench/")) and Path(path).suffix in
               (".py", ".js", ".html", ".yaml", ".json", ".txt")]
    worded = [path for path in product if (REPO / path).is_file() and STATEMENT.search((REPO / path).read_text(
        errors="replace"))]
    assert worded == [WORDED_HERE]


def test_every_identity_carries_it_whatever_the_engine():
    model_dir = built_model_dir()
    for engine in ("onnxruntime", "torch"):
        assert read_identity(model_dir, MODEL_NAME, engine=engine)["intended_use"] == INTENDED_USE


def test_the_cli_prints_the_services_wording_with_each_table():
    result = {"job_id": "j", "top_label": "Mass", "output": {"Mass": 0.7, "Nodule": 0.2},
              "model": {"name": MODEL_NAME, "weights": "real", "engine": "onnxruntime", "intended_use": INTENDED_USE}}
    assert render.score_table(result, io.StringIO()).splitlines()[-1] == INTENDED_USE
    summary = render.summary_table([{"file": "a.png", "status": "COMPLETED", "result": result, "id": "j"}])
    assert summary.splitlines()[-1] == INTENDED_USE
