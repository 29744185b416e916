"""One 3000x2500 12-bit radiograph-like DICOM per compressed transfer syntax, and their decode times side by side.

`dicom_cases()` is what bench_preprocess.py imports; run this file to time each syntax's decode: the reference
(xrv.utils.read_xray_dcm's `pixel_array`, pydicom's default plugin order) against cxr_model's read.
Run: python bench/dicom_cases.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import functools
import io
import os
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dicom_factory import COMPRESSED, SYNTAXES, clinical_radiograph, encode_dicom, syntax_array  # noqa: E402


@functools.lru_cache(maxsize=1)
def dicom_cases() -> list[tuple[str, bytes]]:
    """(syntax name, DICOM bytes) for every compressed syntax, MONOCHROME2, 12 bits stored (baseline JPEG: 8)."""
    image = clinical_radiograph(3000, 2500, bits=12, seed=14)
    return [(name, encode_dicom(syntax_array(image, name), name, bits_stored=12)) for name in COMPRESSED]


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    import pydicom

    from cxr_model.dicom import dicom_pixels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    image = clinical_radiograph(3000, 2500, bits=12, seed=14)
    cases = [(name, encode_dicom(image, name, bits_stored=12)) for name in SYNTAXES if name not in COMPRESSED]
    print(f"loadavg {open('/proc/loadavg').read().split()[:3]}  3000x2500, 12 bits stored, best of {args.repeat}")
    print(f"{'syntax':32s} {'MB':>6s} {'reference ms':>13s} {'cxr_model ms':>13s} {'ratio':>6s}")
    for name, data in cases + dicom_cases():
        def reference():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pydicom.dcmread(io.BytesIO(data), force=True).pixel_array

        ours_s, reference_s = _best(lambda: dicom_pixels(data), args.repeat), _best(reference, args.repeat)
        print(f"{name:32s} {len(data) / 1e6:6.2f} {reference_s * 1e3:13.1f} {ours_s * 1e3:13.1f} "
              f"{ours_s / reference_s:6.2f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
