"""De-identification is wired into every submit entry point, the process wiring (with built model artifacts) included."""
from __future__ import annotations

import io

import pydicom
import pytest

from cxr_model import check_image
from cxr_model.privacy import deidentify_dicom
from tests.images import XRAYS


def test_de_identification_is_required_wiring_of_every_submit_entry_point():
    """No default: a wiring that forgets it cannot be built; the process wiring and every SubmitDeps(...) in the
    product pass the real function; a DICOM submitted through the service is stored without its identity."""
    import ast
    import dataclasses
    from pathlib import Path

    from cxr_core.bootstrap import Runtime
    from cxr_core.config import settings
    from cxr_core.domain import Upload
    from cxr_core.services.submit import SubmitDeps, submit_image
    from tests.fakes import InMemoryImageStore, InMemoryJobStore, InMemoryQueue

    ports = dict(jobs=InMemoryJobStore(), images=InMemoryImageStore(), queue=InMemoryQueue(), model_id="m@1",
                 check_image=check_image)
    with pytest.raises(TypeError, match="deidentify_dicom"):
        SubmitDeps(**ports)
    field = {f.name: f for f in dataclasses.fields(SubmitDeps)}["deidentify_dicom"]
    assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING

    repo = Path(__file__).resolve().parents[2]
    sources = [p for top in ("layers", "functions", "local", "bench", "clients", "infra") for p in (repo / top).rglob("*.py")]
    builds = [(path, node) for path in sources for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "SubmitDeps"]
    assert builds, "no SubmitDeps wiring found: the scan looks in the wrong place"
    for path, call in builds:
        keywords = {k.arg: k.value for k in call.keywords}
        assert "deidentify_dicom" in keywords and not isinstance(keywords["deidentify_dicom"], ast.Lambda), path

    from tests.model_support import built_model_dir

    wired = Runtime(dataclasses.replace(settings(), model_dir=built_model_dir())).submit_deps()
    assert wired.deidentify_dicom is deidentify_dicom

    original = (XRAYS / "siim_pneumothorax_sample.dcm").read_bytes()
    patient_id = str(pydicom.dcmread(io.BytesIO(original)).PatientID).encode()
    outcome = submit_image(Upload(original), SubmitDeps(**ports, deidentify_dicom=wired.deidentify_dicom))
    stored = ports["images"].objects[outcome.job.image_key]
    assert patient_id in original and patient_id not in stored
