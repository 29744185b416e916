"""A clinical mix of uploads for the saturation benchmark: 2-3k px 12/16-bit PNGs, large JPEGs, uncompressed DICOM.

Five base radiographs are made once (cached under bench/results/image_pool/clinical); upload N is base N % 5 with
its bytes made unique without touching the pixels (a PNG tEXt chunk, a JPEG COM segment, the low bytes of the last
DICOM pixels), so every upload is a cache miss that costs a full decode and preprocessing, and no pool of hundreds
of 10 MB files is written. Each stays under API Gateway's 10 MiB payload quota.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

from bench.pools import POOL_ROOT, multipart_body, radiograph

CLINICAL_DIR = POOL_ROOT / "clinical"
KINDS = ("png16_2048x2500.png", "png12_2500x3000.png", "jpeg_rgb_2400x2400.jpg", "jpeg_grey_2600x2600.jpg",
         "dicom12_2000x2500.dcm")


def _make(name: str) -> bytes:
    from tests.model_support import dicom_bytes, jpeg_bytes, png_bytes

    if name.startswith("png16"):
        return png_bytes(radiograph(2500, 2048, 65535, seed=1))
    if name.startswith("png12"):
        return png_bytes(radiograph(3000, 2500, 4095, seed=2))  # 12-bit values in a 16-bit PNG, read as / 65535
    if name.startswith("jpeg_rgb"):
        return jpeg_bytes(radiograph(2400, 2400, 255, rgb=True, seed=3), quality=92)
    if name.startswith("jpeg_grey"):
        return jpeg_bytes(radiograph(2600, 2600, 255, seed=4), quality=92)
    return dicom_bytes(radiograph(2500, 2000, 4095, seed=5), bits_stored=12)


def base_files() -> list[Path]:
    CLINICAL_DIR.mkdir(parents=True, exist_ok=True)
    for name in KINDS:
        path = CLINICAL_DIR / name
        if not path.exists():
            path.with_suffix(".tmp").write_bytes(_make(name))
            path.with_suffix(".tmp").replace(path)
    return [CLINICAL_DIR / name for name in KINDS]


def unique_variant(data: bytes, number: int) -> bytes:
    """The same pixels under different bytes (a different SHA-256, so a cache miss)."""
    tag = f"cxr-bench-{number}".encode()
    if data.startswith(b"\x89PNG"):
        chunk = b"tEXt" + b"Comment\x00" + tag
        text = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        return data[:33] + text + data[33:]  # after the signature and IHDR
    if data.startswith(b"\xff\xd8"):
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + data[2:]
    low = number.to_bytes(4, "little")  # DICOM: low bytes of the last four 12-bit pixels (high bytes stay <= 0x0F)
    tail = bytearray(data[-8:])
    tail[0::2] = low
    return data[:-8] + bytes(tail)


class ClinicalUploads:
    """Uploads first .. first + count - 1 (raw, or as multipart bodies), built when asked for: no pool in memory."""

    def __init__(self, first: int, count: int, multipart: bool = False) -> None:
        self.bases = [path.read_bytes() for path in base_files()]
        self.first, self.count, self.multipart = first, count, multipart

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        number = self.first + index
        data = unique_variant(self.bases[number % len(self.bases)], number)
        return multipart_body(data) if self.multipart else data
