"""GET /v1/jobs/{id}/heatmap: one finding's class activation map, over the image the model saw or as the raw grid."""
from __future__ import annotations

from dataclasses import dataclass

from cxr_core.domain import ErrorKind, ServiceError, bad_request
from cxr_core.heatmaps import UNITS, decode_heatmap, model_input_key
from cxr_core.overlay import decode_grey_png, overlay_png
from cxr_core.ports import ImageStore, JobStore
from cxr_core.services.jobs import get_result

FORMATS = ("png", "json")
DEFAULT_OPACITY = 0.5


@dataclass(frozen=True)
class HeatmapQuery:
    label: str | None
    format: str
    opacity: float


def parse_heatmap_query(label: str | None, fmt: str | None, opacity: str | None) -> HeatmapQuery:
    fmt = (fmt or "png").lower()
    if fmt not in FORMATS:
        raise bad_request(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    try:
        value = DEFAULT_OPACITY if opacity is None else float(opacity)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise bad_request(f"opacity must be a number from 0 (the image alone) to 1 (the map alone); got {opacity!r}")
    return HeatmapQuery(label or None, fmt, value)


def heatmap(jobs: JobStore, images: ImageStore, job_id: str, client_id: str | None,
            query: HeatmapQuery) -> tuple[str, bytes | dict]:
    """(content type, body): a PNG overlay, or {"grid": 7x7 logits, ...}. 404 for another client's job (tenancy of
    results), 409 until COMPLETED, 400 naming the valid findings for any other label."""
    job = get_result(jobs, job_id, client_id)
    result = job.result or {}
    record = result.get("heatmaps")
    if not record:
        raise ServiceError(ErrorKind.NOT_FOUND, "HEATMAP_NOT_FOUND", f"job {job_id}'s result was computed without heatmaps")
    label = query.label or result.get("top_label")
    if label not in record["labels"]:
        raise bad_request(f"no heatmap for label {query.label!r}; this job's findings: {', '.join(record['labels'])}")
    if query.format == "json":
        return "application/json", {"job_id": job_id, "label": label, "score": result.get("output", {}).get(label),
                                    "grid": decode_heatmap(record, label), "units": UNITS,
                                    "quantisation": record["encoding"], "model": result.get("model", {})}
    grey, width, height = decode_grey_png(images.get(model_input_key(job.image_key)))
    if width != height:
        raise ValueError(f"stored model input is {width}x{height}, not square")
    return "image/png", overlay_png(grey, record, label, query.opacity, size=width)
