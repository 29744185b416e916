"""Preprocessing benchmark (issue 14): decode, preprocessing, forward pass, torchxrayvision's reference, side by side.

Run:  python -m bench preprocess [--runs 5] [--model-dir layers/model/weights] [--only SUBSTRING]
One row per format and size, CPU ms (time.process_time, p50; one core: onnxruntime and BLAS capped to 1 thread):
  codec    the decoder's own full decode (simplejpeg for JPEG, PIL Image.load for PNG; DICOM: whole pixel read)
  decode   bytes -> integer pixel array (cxr_model's Pixels)
  prep     the service's whole preprocessing, bytes -> (1, 224, 224) tensor (decode included)
  fwd      one forward pass, onnxruntime batch 1, measured in the same run (median of samples taken between rows)
  ref      torchxrayvision's recommended pipeline on the same bytes (skimage.io.imread / read_xray_dcm, normalize,
           mean over RGB, XRayCenterCrop, XRayResizer(224))
Ratios to fwd, the targets of issue 14: prep/fwd <= 0.35 for the uncompressed 3000x2500 DICOM;
(prep - codec)/fwd <= 0.25 for anything compressed. `max|d|`: max |prep - ref| on the [-1024, 1024] scale.
Every compressed DICOM transfer syntax is a case too (bench/pools.py's dicom_syntax_cases).
Writes bench/results/bench_preprocess.json.
"""
from __future__ import annotations

import argparse
import io

import numpy as np

from bench.harness import REPO, RESULTS, load_average, p50_cpu_ms, percentile, write_json
from bench.pools import dicom_syntax_cases, radiograph


def reference_pipeline(data: bytes) -> np.ndarray:
    """torchxrayvision's recommended pipeline from bytes: imread/read_xray_dcm, normalize, mean, crop, resize."""
    import skimage.io
    import torchxrayvision as xrv

    if data[128:132] == b"DICM":
        image = xrv.utils.read_xray_dcm(io.BytesIO(data))
    else:
        image = skimage.io.imread(io.BytesIO(data))
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        image = xrv.datasets.normalize(image, 255 if image.dtype == np.uint8 else 65535)
        if image.ndim == 3:
            image = image.mean(2)
    image = xrv.datasets.XRayCenterCrop()(image[None, ...])
    return xrv.datasets.XRayResizer(224)(image)


def default_cases() -> list[tuple[str, bytes]]:
    """JPEG RGB/grey at 224, 1024 and 2400 px, 8/16-bit PNG, uncompressed 3000x2500 DICOM (explicit VR LE)."""
    from tests.model_support import dicom_bytes, jpeg_bytes, png_bytes

    cases = []
    for size in (224, 1024, 2400):
        cases.append((f"JPEG RGB {size}x{size} q92", jpeg_bytes(radiograph(size, size, 255, rgb=True), quality=92)))
        cases.append((f"JPEG grey {size}x{size} q92", jpeg_bytes(radiograph(size, size, 255), quality=92)))
    cases.append(("PNG 8-bit grey 1024x1024", png_bytes(radiograph(1024, 1024, 255))))
    cases.append(("PNG 16-bit grey 1024x1024", png_bytes(radiograph(1024, 1024, 65535))))
    cases.append(("PNG 16-bit grey 2500x3000", png_bytes(radiograph(3000, 2500, 65535))))
    twelve_bit = radiograph(3000, 2500, 4095)
    cases.append(("DICOM explicit VR LE 12-bit MONOCHROME2 2500x3000", dicom_bytes(twelve_bit, bits_stored=12)))
    cases.append(("DICOM explicit VR LE 12-bit MONOCHROME1 2500x3000",
                  dicom_bytes(4095 - twelve_bit, "MONOCHROME1", bits_stored=12)))
    return cases


def _codec(data: bytes):
    """The decoder's own work alone: simplejpeg's (libjpeg-turbo) for JPEG, PIL's for PNG; DICOM: the pixel read."""
    import simplejpeg
    from PIL import Image

    from cxr_model.dicom import dicom_pixels

    if data[:3] == b"\xff\xd8\xff":
        colorspace = "GRAY" if simplejpeg.decode_jpeg_header(data)[2] == "Gray" else "RGB"
        return lambda: simplejpeg.decode_jpeg(data, colorspace=colorspace)
    if data[:4] == b"\x89PNG":
        return lambda: Image.open(io.BytesIO(data)).load()
    return lambda: dicom_pixels(data)


def _decode(data: bytes):
    from cxr_model.decode import raster_pixels, sniff_format
    from cxr_model.dicom import dicom_pixels

    fmt = sniff_format(data)
    return (lambda: dicom_pixels(data)) if fmt == "dicom" else (lambda: raster_pixels(data, fmt))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "layers" / "model" / "weights"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="run only cases whose label contains this")
    args = parser.parse_args(argv)

    import warnings

    warnings.simplefilter("ignore")
    from cxr_model import load_predictor
    from cxr_model_build.build import build
    from cxr_model.preprocess import preprocess

    build(args.model_dir, allow_random_init=True)
    predictor = load_predictor(args.model_dir, engine="onnxruntime", threads=1)  # also caps BLAS at one thread
    cases = [(label, data) for label, data in default_cases() + dicom_syntax_cases() if args.only in label]
    batch = np.zeros((1, 1, 224, 224), np.float32)
    forward_samples = [p50_cpu_ms(lambda: predictor.engine.run(batch), 10)]
    rows = []
    for label, data in cases:
        reference = reference_pipeline(data)
        row = {"input": label, "bytes": len(data),
               "codec_ms": p50_cpu_ms(_codec(data), args.runs),
               "decode_ms": p50_cpu_ms(_decode(data), args.runs),
               "prep_ms": p50_cpu_ms(lambda: preprocess(data), args.runs),
               "ref_ms": p50_cpu_ms(lambda: reference_pipeline(data), max(1, args.runs // 2)),
               "max_abs_diff": float(np.abs(preprocess(data) - reference).max())}
        forward_samples.append(p50_cpu_ms(lambda: predictor.engine.run(batch), 5))
        rows.append(row)
    forward_ms = percentile(forward_samples, 50)
    print(f"CPU ms (p50 of {args.runs}), one core; load average {load_average()}; "
          f"forward pass (onnxruntime, batch 1, 1 thread) {forward_ms:.1f} ms "
          f"(range {min(forward_samples):.1f}-{max(forward_samples):.1f} over the run)")
    print(f"{'input':<52}{'MB':>6}{'codec':>8}{'decode':>8}{'prep':>8}{'ref':>8}{'prep/fwd':>9}"
          f"{'(prep-codec)/fwd':>17}{'ref/prep':>9}{'max|d|':>9}")
    for row in rows:
        row["prep_over_forward"] = row["prep_ms"] / forward_ms
        row["beyond_codec_over_forward"] = (row["prep_ms"] - row["codec_ms"]) / forward_ms
        print(f"{row['input']:<52}{row['bytes'] / 1e6:6.2f}{row['codec_ms']:8.1f}{row['decode_ms']:8.1f}"
              f"{row['prep_ms']:8.1f}{row['ref_ms']:8.0f}{row['prep_over_forward']:9.2f}"
              f"{row['beyond_codec_over_forward']:17.2f}{row['ref_ms'] / row['prep_ms']:8.1f}x"
              f"{row['max_abs_diff']:9.1e}")
    write_json(RESULTS / "bench_preprocess.json", {"forward_ms": forward_ms, "forward_samples_ms": forward_samples,
                                                     "runs": args.runs, "identity": predictor.identity, "rows": rows,
                                                     "load_average": load_average()})
    return 0
