"""Real sample radiographs, and distinct variants of them for cache misses."""
from __future__ import annotations

import io
import os
import random
from pathlib import Path

from PIL import Image

XRAYS = Path(os.environ.get("CXR_XRAYS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "xrays"))
SAMPLE_PNG = XRAYS / "00000001_000.png"
SAMPLE_FILES = {"png": XRAYS / "00000001_000.png", "jpeg": XRAYS / "16747_3_1.jpg",
                "dicom": XRAYS / "siim_pneumothorax_sample.dcm"}


def perturbed_png(seed: int, source: Path = SAMPLE_PNG, pixels: int = 8) -> bytes:
    """The sample X-ray with a few pixels nudged: a distinct SHA-256 that still decodes and costs what it costs."""
    rng = random.Random(seed)
    image = Image.open(source).convert("L")
    data = image.load()
    for _ in range(pixels):
        x, y = rng.randrange(image.width), rng.randrange(image.height)
        data[x, y] = (data[x, y] + rng.randrange(1, 255)) % 256
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
