"""What the gateway scores: frontal chest radiographs only; anything else is skipped with a reason (docs/pacs.md)."""
from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import UID

CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
SCORED_SOP_CLASSES = frozenset({CR_IMAGE, DX_FOR_PRESENTATION})
SCORED_MODALITIES = frozenset({"CR", "DX"})
FRONTAL_VIEWS = frozenset({"PA", "AP"})
_NON_IMAGE_HINTS = (" SR ", "Presentation State", "Key Object", "Waveform",
                    "Encapsulated", "Raw Data", "Spatial Registration", "Segmentation", "Measurement Report")


def _sop_class_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else uid


def skip_reason(header: Dataset) -> str | None:
    """None for a frontal chest radiograph the service can score, else why it is skipped (checked in this order)."""
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class not in SCORED_SOP_CLASSES:
        name = _sop_class_name(sop_class) if sop_class else "missing"
        if sop_class == DX_FOR_PROCESSING:
            return "DX For Processing: raw detector data, not a presentation image"
        if any(hint in f" {name} " for hint in _NON_IMAGE_HINTS):
            return f"non-image SOP class: {name}"
        return f"SOP class {name} is not a radiograph (CR or DX For Presentation)"
    modality = str(header.get("Modality", "")).strip().upper()
    if modality not in SCORED_MODALITIES:
        return f"Modality {modality or 'missing'} is not CR or DX"
    body_part = str(header.get("BodyPartExamined", "")).strip().upper()
    if body_part and body_part != "CHEST":
        return f"BodyPartExamined {body_part} is not CHEST"
    view = str(header.get("ViewPosition", "")).strip().upper()
    if view and view not in FRONTAL_VIEWS:
        return f"ViewPosition {view} is not frontal (PA or AP)"
    try:
        frames = header.get("NumberOfFrames")
        count = int(frames) if frames is not None and str(frames).strip() else 1
    except (TypeError, ValueError):
        return "NumberOfFrames is not a number: the image cannot be read as one frame"
    if count > 1:
        return f"multi-frame ({count} frames): the service scores single-frame images (it answers 422)"
    return None
