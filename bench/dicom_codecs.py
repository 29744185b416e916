"""DICOM decode time per transfer syntax: the reference (pydicom's pixel_array, as xrv's read_xray_dcm) vs cxr_model.

Run: python -m bench dicom-codecs [--repeat 3]
One 3000x2500 12-bit radiograph (8 bits for baseline JPEG) in every transfer syntax (bench/pools.py's
dicom_syntax_cases for the compressed ones), best of --repeat per decoder.
"""
from __future__ import annotations

import argparse
import io
import os
import time
import warnings

from bench.harness import load_average
from bench.pools import dicom_syntax_cases


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import pydicom

    from cxr_model.dicom import dicom_pixels
    from tests.dicom_factory import COMPRESSED, SYNTAXES, clinical_radiograph, encode_dicom

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    image = clinical_radiograph(3000, 2500, bits=12, seed=14)
    cases = [(name, encode_dicom(image, name, bits_stored=12)) for name in SYNTAXES if name not in COMPRESSED]
    print(f"load average {load_average()}  3000x2500, 12 bits stored, best of {args.repeat}")
    print(f"{'syntax':32s} {'MB':>6s} {'reference ms':>13s} {'cxr_model ms':>13s} {'ratio':>6s}")
    for name, data in cases + dicom_syntax_cases():
        def reference():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pydicom.dcmread(io.BytesIO(data), force=True).pixel_array

        ours_s, reference_s = _best(lambda: dicom_pixels(data), args.repeat), _best(reference, args.repeat)
        print(f"{name:32s} {len(data) / 1e6:6.2f} {reference_s * 1e3:13.1f} {ours_s * 1e3:13.1f} "
              f"{ours_s / reference_s:6.2f}")
    return 0

