"""Heatmap overlays of the top findings as DICOM Secondary Capture images (highdicom SCImage), filed in the source
image's study beside the SR (`send_heatmaps`, off by default)."""
from __future__ import annotations

import io

import numpy as np
from highdicom.sc import SCImage
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from . import sr as sr_module

HEATMAP_SERIES_NUMBER = 7702
SCALE = 2  # the service's 224 px overlay, shown at 448 px above a band of burned-in text
TEXT_BAND_PX = 56
MAP_NOTE = ("class activation map of the finding's logit (before torchxrayvision's sigmoid and op_norm calibration) "
            "on the 224 x 224 image the model saw (centre crop)")


def heatmap_uid(source_sop_instance_uid: str, model_id: str, label: str) -> str:
    """The same image, model and finding always give the same SOP Instance UID: a re-send never duplicates."""
    return sr_module.derived_uid("cxr-gateway-heatmap", source_sop_instance_uid, model_id, label)


def heatmap_series_uid(study_instance_uid: str, model_id: str) -> str:
    return sr_module.derived_uid("cxr-gateway-heatmap-series", study_instance_uid, model_id)


def top_findings(result: dict, count: int) -> list[str]:
    """The labels with the highest scores, highest first (ties by label, so the choice is stable)."""
    return [label for label, _ in sorted(result["output"].items(), key=lambda item: (-item[1], item[0]))[:count]]


def _with_text(overlay_png: bytes, lines: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw

    overlay = Image.open(io.BytesIO(overlay_png)).convert("RGB")
    width, height = overlay.width * SCALE, overlay.height * SCALE
    canvas = Image.new("RGB", (width, height + TEXT_BAND_PX), (0, 0, 0))
    canvas.paste(overlay.resize((width, height), Image.NEAREST), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((4, height + 4 + 13 * index), line, fill=(255, 255, 255))
    return np.asarray(canvas, dtype=np.uint8)


def build_heatmap(source: Dataset, result: dict, label: str, rank: int, overlay_png: bytes) -> bytes:
    """One finding's overlay as an RGB Secondary Capture in the source's study (patient and study copied by
    highdicom), its own series, the research-use statement burned in and in ImageComments; stand-in weights say so."""
    source = sr_module.with_type2(source)
    model = result["model"]
    kind, model_id = model.get("weights"), sr_module.model_identity(model)
    score = float(result["output"][label])
    lines = [sr_module.RESEARCH_USE_ONLY.upper(), f"{label}: score {score:.3f} (map of the logit)"]
    if kind != "real":
        lines.append(f"STAND-IN WEIGHTS ({kind}): NOT FOR CLINICAL USE")
    image = SCImage.from_ref_dataset(
        ref_dataset=source, pixel_array=_with_text(overlay_png, lines), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", patient_orientation=("L", "F"),
        series_instance_uid=heatmap_series_uid(str(source.StudyInstanceUID), model_id),
        series_number=HEATMAP_SERIES_NUMBER, sop_instance_uid=heatmap_uid(str(source.SOPInstanceUID), model_id, label),
        instance_number=rank, manufacturer=sr_module.MANUFACTURER, transfer_syntax_uid=ExplicitVRLittleEndian)
    # the overlay keeps the source's orientation (a centre crop, resized): its PatientOrientation is the source's,
    # as the sender gave it (type 2: empty where unknown), not a value made up for highdicom's check
    image.PatientOrientation = source.get("PatientOrientation", None)
    image.BurnedInAnnotation = "YES"
    image.SeriesDescription = ("CXR AI heatmaps - research use only" if kind == "real"
                               else f"CXR AI heatmaps - STAND-IN ({kind}) - research use")[:64]
    comments = [sr_module.RESEARCH_USE_ONLY, f"{label}: {MAP_NOTE}; score {score:.4f}"]
    if result.get("job_id"):
        comments.append(sr_module.job_text(result["job_id"]))
    if kind != "real":
        comments.append(sr_module.STAND_IN_TEXT.format(kind=kind))
    image.ImageComments = " ".join(comments)[:10240]
    image.DerivationDescription = f"{MAP_NOTE}, model {model.get('name')} ({model_id})"[:1024]
    buffer = io.BytesIO()
    image.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
