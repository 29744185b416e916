"""Shared helpers for the model-layer tests: sample files, synthetic images, built artifacts, xrv reference."""
from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = Path(os.environ.get("CXR_SAMPLES_DIR", REPO.parent / "shared" / "data" / "xrays"))
SAMPLE_FILES = sorted(p for p in SAMPLES_DIR.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".dcm"))
# The tests' own random-init stand-in (`make test-model`), never layers/model/weights, which may hold real weights.
TEST_MODEL_DIR = Path(os.environ.get("CXR_TEST_MODEL_DIR", REPO / "build" / "test-weights"))
MODEL_NAME = "densenet121-res224-all"


@functools.lru_cache(maxsize=1)
def built_model_dir(tmp_root: str | None = None) -> str:
    """TEST_MODEL_DIR when the build step finds it up to date (no torch import), else built, offline, in tmp."""
    from cxr_model_build.build import build

    for candidate in [str(TEST_MODEL_DIR)] + ([os.path.join(tmp_root, "weights")] if tmp_root else []):
        try:
            build(candidate, MODEL_NAME, allow_random_init=True, offline=True)
            return candidate
        except OSError:
            continue  # read-only checkout: fall through to the tmp dir
    raise RuntimeError("could not build model artifacts")


def png_bytes(array: np.ndarray, **save_args) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **save_args)
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 95, mode: str | None = None) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def dicom_bytes(array: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
                preamble: bool = True) -> bytes:
    """An uncompressed (explicit VR little endian) single-frame DICOM holding `array`."""
    from tests.dicom_factory import native_dataset

    buffer = io.BytesIO()
    native_dataset(array, photometric, bits_stored).save_as(buffer, enforce_file_format=preamble)
    return buffer.getvalue()


def dicom_jpeg_bytes(array: np.ndarray, photometric: str = "MONOCHROME2", quality: int = 92) -> bytes:
    """An 8-bit greyscale image as a baseline-JPEG encapsulated DICOM (what many archives send)."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(np.zeros((8, 8), np.uint8))))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows, ds.Columns = array.shape
    ds.PixelData = encapsulate([jpeg_bytes(array, quality=quality)])
    ds["PixelData"].VR = "OB"
    ds.PhotometricInterpretation = photometric
    ds.LossyImageCompression = "01"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def synthetic_radiograph(height: int, width: int, maxval: int, seed: int = 0) -> np.ndarray:
    """Smooth anatomy-like field with fine texture, integer-valued in [0, maxval]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    field = 0.5 + 0.25 * np.sin(xx / width * 6.0 + rng.uniform(0, 3)) * np.cos(yy / height * 4.0)
    field += 0.2 * np.exp(-(((xx - width * 0.35) / (width * 0.15)) ** 2 + ((yy - height * 0.5) / (height * 0.3)) ** 2))
    field += rng.normal(0, 0.02, size=field.shape).astype(np.float32)
    return (np.clip(field, 0, 1) * maxval).round().astype(np.uint16 if maxval > 255 else np.uint8)


def xrv_reference(data: bytes, tmp_dir: Path) -> np.ndarray:
    """torchxrayvision's recommended pipeline on the same bytes: its own functions end to end."""
    import skimage.io
    import torchxrayvision as xrv

    path = tmp_dir / "reference_input"
    path.write_bytes(data)
    if data[128:132] == b"DICM":
        image = xrv.utils.read_xray_dcm(str(path))
    else:
        image = skimage.io.imread(str(path))
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]  # cxr_model drops alpha; the reference is compared on colour only
        image = xrv.datasets.normalize(image, 255 if image.dtype == np.uint8 else 65535)
        if image.ndim == 3:
            image = image.mean(2)
    image = xrv.datasets.XRayCenterCrop()(image[None, ...])
    return xrv.datasets.XRayResizer(224)(image)


@functools.lru_cache(maxsize=1)
def large_radiographs() -> dict[str, bytes]:
    """Clinical-size inputs: the samples upscaled to 2,400-3,000 px with quantum-like noise, in every format."""
    from PIL import Image

    rng = np.random.default_rng(42)
    chest = Image.open(SAMPLES_DIR / "00000001_000.png").convert("L")
    padchest = Image.open(SAMPLES_DIR / "16747_3_1.jpg").convert("RGB")

    def noisy(image, maxval: int) -> np.ndarray:
        values = np.asarray(image, dtype=np.float32) * (maxval / 255.0)
        return np.clip(values + rng.normal(0, 0.01 * maxval, values.shape), 0, maxval).round()

    rgb = noisy(padchest.resize((2400, 2050), Image.BICUBIC), 255).astype(np.uint8)
    rgb_square = noisy(padchest.crop((75, 0, 960, 885)).resize((2400, 2400), Image.BICUBIC), 255).astype(np.uint8)
    return {
        "jpeg_rgb_2400x2050": jpeg_bytes(rgb, quality=92),
        "jpeg_rgb_2400x2400": jpeg_bytes(rgb_square, quality=92),
        "jpeg_grey_2600x2600": jpeg_bytes(noisy(chest.resize((2600, 2600), Image.BICUBIC), 255).astype(np.uint8)),
        "png8_2800x2800": png_bytes(noisy(chest.resize((2800, 2800), Image.BICUBIC), 255).astype(np.uint8)),
        "png16_2500x3000": png_bytes(noisy(chest.resize((2500, 3000), Image.BICUBIC), 65535).astype(np.uint16)),
        "dicom16_3000x2500_mono2": dicom_bytes(noisy(chest.resize((2500, 3000), Image.BICUBIC), 65535)
                                               .astype(np.uint16)),
        "dicom_jpeg_2600x2600_mono1": dicom_jpeg_bytes(noisy(chest.resize((2600, 2600), Image.BICUBIC), 255)
                                                       .astype(np.uint8), "MONOCHROME1"),
        "dicom12_3000x2500_mono1": dicom_bytes(noisy(chest.resize((2500, 3000), Image.BICUBIC), 4095)
                                               .astype(np.uint16), "MONOCHROME1", bits_stored=12),
    }
