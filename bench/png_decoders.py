"""PNG decode candidates side by side on the clinical mix's 16-bit PNGs (issue 28): time, pixels against Pillow's, size.

Run: python -m bench png-decoders [--repeats 7]
Candidates that are not installed are listed as such (pyspng and pyspng-seunglab install the same module name:
run once with each on PYTHONPATH). CPU ms (process_time), the median of `repeats` calls, alternating candidates
within one process. "inflate only" rows decode nothing (no unfilter): they bound what an inflate-based path can do.
"""
from __future__ import annotations

import argparse
import io
import statistics
import struct
import time
import zlib
from importlib import metadata

import numpy as np
from PIL import Image

from bench.clinical_mix import base_files
from bench.harness import load_average


def _idat(data: bytes) -> bytes:
    offset, parts = 8, []
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IDAT":
            parts.append(data[offset + 8:offset + 8 + length])
        offset += 12 + length
    return b"".join(parts)


def _installed_mib(distribution: str) -> float | None:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        return None
    return sum((file.size or 0) for file in files) / 2**20


def pillow_pixels(data: bytes) -> np.ndarray:
    """raster_pixels with the ISA-L path switched off: Pillow's own load."""
    import cxr_model.decode as decode

    fast = decode.fast_png_decode
    decode.fast_png_decode = lambda *args: None
    try:
        return decode.raster_pixels(data, "png").array
    finally:
        decode.fast_png_decode = fast


def candidates() -> dict:
    import cxr_model.decode as decode

    found = {"Pillow (raster_pixels, fast path off)": ("pillow", pillow_pixels, True),
             "ISA-L inflate + Pillow's unfilter (adopted)": ("isal", lambda d: decode.raster_pixels(d, "png").array,
                                                             True),
             "zlib inflate only": (None, lambda d: zlib.decompress(_idat(d)), False)}
    try:
        from isal import isal_zlib
        found["ISA-L inflate only"] = ("isal", lambda d: isal_zlib.decompress(_idat(d)), False)
    except ImportError:
        found["ISA-L inflate only"] = ("isal", None, False)
    try:
        from zlib_ng import zlib_ng
        found["zlib-ng inflate only"] = ("zlib-ng", lambda d: zlib_ng.decompress(_idat(d)), False)
    except ImportError:
        found["zlib-ng inflate only"] = ("zlib-ng", None, False)
    try:
        import pyspng
        distribution = next((name for name in ("pyspng-seunglab", "pyspng") if _installed_mib(name)), "pyspng")
        found[f"libspng ({distribution})"] = (distribution, pyspng.load, True)
    except ImportError:
        found["libspng (pyspng / pyspng-seunglab)"] = ("pyspng", None, True)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    table = candidates()
    print(f"load average {load_average()}")
    for path in [p for p in base_files() if p.suffix == ".png"]:
        data = path.read_bytes()
        reference = np.asarray(Image.open(io.BytesIO(data)))
        times = {name: [] for name, (_, function, _) in table.items() if function is not None}
        for _ in range(args.repeats):
            for name in times:
                started = time.process_time()
                table[name][1](data)
                times[name].append((time.process_time() - started) * 1000)
        pillow_ms = statistics.median(times["Pillow (raster_pixels, fast path off)"])
        print(f"\n{path.name} ({len(data) / 1e6:.1f} MB)")
        print("| candidate | CPU ms | x Pillow | pixels equal Pillow's | installed MiB |")
        print("|---|---|---|---|---|")
        for name, (distribution, function, decodes) in table.items():
            size = _installed_mib(distribution) if distribution else None
            size_text = f"{size:.1f}" if size else ("in Pillow" if distribution == "pillow" else "-")
            if function is None:
                print(f"| {name} | not installed | | | |")
                continue
            median = statistics.median(times[name])
            if decodes:
                try:
                    out = np.asarray(function(data))
                    equal = f"{out.shape} {out.dtype}: {np.array_equal(out, reference)}"
                except Exception as error:  # a candidate's failure is a finding, not a crash of the bench
                    equal = f"error {type(error).__name__}"
            else:
                equal = "(no pixels)"
            print(f"| {name} | {median:.1f} | {median / pillow_ms:.2f} | {equal} | {size_text} |")
    return 0
