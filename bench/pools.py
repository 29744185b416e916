"""Images the studies send or time, made before a measurement so load generators spend no CPU encoding them."""
from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.harness import RESULTS

POOL_ROOT = RESULTS / "image_pool"
MULTIPART_BOUNDARY = "cxrbenchboundary7MA4YWxk"


def _make_variant(seed: int) -> bytes:
    from tests.images import XRAYS, perturbed_png

    sources = sorted(p for p in XRAYS.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return perturbed_png(seed, source=sources[seed % len(sources)])


def image_pool(count: int, first_seed: int = 1, folder: str | None = None) -> list[Path]:
    """`count` distinct, real-looking X-ray PNGs (sample radiographs, a few pixels changed), cached on disk under
    POOL_ROOT/<folder or seedN>: every one a cache miss that costs a real decode and preprocessing."""
    root = POOL_ROOT / (folder or f"seed{first_seed}")
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"{seed:07d}.png" if folder else root / f"{seed:06d}.png"
             for seed in range(first_seed, first_seed + count)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        seeds = [int(p.stem) for p in missing]
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for path, data in zip(missing, pool.map(_make_variant, seeds, chunksize=16)):
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
    return paths


def multipart_body(data: bytes, boundary: str = MULTIPART_BOUNDARY) -> tuple[bytes, str]:
    """A seed-compatible multipart/form-data body with field `image`; returns (body, content type)."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"xray.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def radiograph(height: int, width: int, maxval: int, rgb: bool = False, seed: int = 0) -> np.ndarray:
    """A sample chest X-ray resized to height x width with quantum-like noise (texture the codecs must carry)."""
    from PIL import Image

    from tests.model_support import SAMPLES_DIR

    source = Image.open(SAMPLES_DIR / ("16747_3_1.jpg" if rgb else "00000001_000.png")).convert("RGB" if rgb else "L")
    values = np.asarray(source.resize((width, height), Image.BICUBIC), dtype=np.float32) * (maxval / 255.0)
    noisy = values + np.random.default_rng(seed).normal(0, 0.01 * maxval, values.shape).astype(np.float32)
    return np.clip(noisy, 0, maxval).round().astype(np.uint8 if maxval == 255 else np.uint16)


@functools.lru_cache(maxsize=1)
def dicom_syntax_cases() -> list[tuple[str, bytes]]:
    """(syntax name, DICOM bytes): one 3000x2500 radiograph per compressed syntax, MONOCHROME2, 12 bits stored
    (baseline JPEG: 8)."""
    from tests.dicom_factory import COMPRESSED, clinical_radiograph, encode_dicom, syntax_array

    image = clinical_radiograph(3000, 2500, bits=12, seed=14)
    return [(name, encode_dicom(syntax_array(image, name), name, bits_stored=12)) for name in COMPRESSED]
