"""DICOM files in every transfer syntax radiographs are stored in, encoded here for the tests and the benchmarks."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tests.model_support import SAMPLES_DIR


@dataclass(frozen=True)
class Syntax:
    uid: str
    lossless: bool
    encode: Callable  # (dataset with native pixels, the pixel array) -> the dataset in this syntax


def _native(uid: str) -> Callable:
    def encode(ds, array):
        ds.file_meta.TransferSyntaxUID = uid
        return ds
    return encode


def _pydicom(uid: str, **options) -> Callable:
    """pydicom's own encoders (RLE: pydicom/pylibjpeg-rle, JPEG-LS: pyjpegls, JPEG 2000: pylibjpeg-openjpeg)."""
    def encode(ds, array):
        ds.compress(uid, **options)
        return ds
    return encode


def _frame(uid: str, codec: Callable, keeps_sign: bool = False) -> Callable:
    """One encapsulated frame from a codec that pydicom cannot write; signed pixels go in as their bit pattern
    unless the codec keeps the sign itself (HTJ2K)."""
    def encode(ds, array):
        from pydicom.encaps import encapsulate

        bits = int(ds.BitsStored)
        unsigned = array.astype(np.uint16 if array.itemsize == 2 else np.uint8) & ((1 << bits) - 1)
        ds.file_meta.TransferSyntaxUID = uid
        ds.PixelData = encapsulate([codec(array if keeps_sign else unsigned, bits)])
        ds["PixelData"].VR = "OB"
        if not SYNTAXES_BY_UID[uid].lossless:
            ds.LossyImageCompression = "01"
        return ds
    return encode


def _pillow_jpeg(array, bits):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _turbo_jpeg(**options) -> Callable:
    """libjpeg-turbo 3 through imagecodecs: 12-bit DCT (process 4) and lossless (process 14) JPEG."""
    def codec(array, bits):
        import imagecodecs

        return imagecodecs.jpeg8_encode(array, bitspersample=bits, **options)
    return codec


def _htj2k(**options) -> Callable:
    def codec(array, bits):
        import imagecodecs

        return imagecodecs.htj2k_encode(array, **options)
    return codec


def _syntaxes() -> dict[str, Syntax]:
    from pydicom import uid

    return {
        "ExplicitVRLittleEndian": Syntax(uid.ExplicitVRLittleEndian, True, _native(uid.ExplicitVRLittleEndian)),
        "ImplicitVRLittleEndian": Syntax(uid.ImplicitVRLittleEndian, True, _native(uid.ImplicitVRLittleEndian)),
        "DeflatedExplicitVRLittleEndian": Syntax(uid.DeflatedExplicitVRLittleEndian, True,
                                                 _native(uid.DeflatedExplicitVRLittleEndian)),
        "RLELossless": Syntax(uid.RLELossless, True, _pydicom(uid.RLELossless)),
        "JPEGBaseline8Bit": Syntax(uid.JPEGBaseline8Bit, False, _frame(uid.JPEGBaseline8Bit, _pillow_jpeg)),
        "JPEGExtended12Bit": Syntax(uid.JPEGExtended12Bit, False,
                                    _frame(uid.JPEGExtended12Bit, _turbo_jpeg(level=90))),
        "JPEGLossless": Syntax(uid.JPEGLossless, True,
                               _frame(uid.JPEGLossless, _turbo_jpeg(lossless=True, predictor=6))),
        "JPEGLosslessSV1": Syntax(uid.JPEGLosslessSV1, True,
                                  _frame(uid.JPEGLosslessSV1, _turbo_jpeg(lossless=True, predictor=1))),
        "JPEGLSLossless": Syntax(uid.JPEGLSLossless, True, _pydicom(uid.JPEGLSLossless)),
        "JPEGLSNearLossless": Syntax(uid.JPEGLSNearLossless, False, _pydicom(uid.JPEGLSNearLossless, jls_error=3)),
        "JPEG2000Lossless": Syntax(uid.JPEG2000Lossless, True, _pydicom(uid.JPEG2000Lossless)),
        "JPEG2000": Syntax(uid.JPEG2000, False, _pydicom(uid.JPEG2000, j2k_cr=[10])),
        "HTJ2KLossless": Syntax(uid.HTJ2KLossless, True, _frame(uid.HTJ2KLossless, _htj2k(reversible=True), True)),
        "HTJ2KLosslessRPCL": Syntax(uid.HTJ2KLosslessRPCL, True,  # OpenJPH writes RPCL order; TLM as .202 asks
                                    _frame(uid.HTJ2KLosslessRPCL, _htj2k(reversible=True, tlm=True), True)),
        "HTJ2K": Syntax(uid.HTJ2K, False, _frame(uid.HTJ2K, _htj2k(reversible=False, level=0.0002), True)),
    }


SYNTAXES = _syntaxes()
SYNTAXES_BY_UID = {syntax.uid: syntax for syntax in SYNTAXES.values()}
COMPRESSED = [name for name, syntax in SYNTAXES.items() if syntax.uid.is_compressed]


def native_dataset(array: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
                   rescale: tuple[float, float] | None = None):
    """An explicit VR little endian dataset holding `array` (signed dtypes give PixelRepresentation 1)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.set_pixel_data(array, photometric, bits_stored or array.dtype.itemsize * 8)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    return ds


def encode_dicom(array: np.ndarray, syntax: str, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
                 rescale: tuple[float, float] | None = None) -> bytes:
    """`array` as a single-frame DICOM file in the named transfer syntax (a key of SYNTAXES)."""
    if array.itemsize == 1:
        bits_stored = min(bits_stored or 8, 8)
    ds = SYNTAXES[syntax].encode(native_dataset(array, photometric, bits_stored, rescale), array)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=syntax == "ImplicitVRLittleEndian", little_endian=True)
    return buffer.getvalue()


def clinical_radiograph(height: int = 3000, width: int = 2500, bits: int = 12, seed: int = 0) -> np.ndarray:
    """A real sample chest X-ray upscaled to a detector's size with quantum-like noise, `bits`-bit unsigned."""
    from PIL import Image

    maxval = (1 << bits) - 1
    chest = Image.open(SAMPLES_DIR / "00000001_000.png").convert("L").resize((width, height), Image.BICUBIC)
    values = np.asarray(chest, dtype=np.float32) * (maxval / 255.0)
    noise = np.random.default_rng(seed).normal(0, 0.004 * maxval, values.shape).astype(np.float32)
    return np.clip(values + noise, 0, maxval).round().astype(np.uint16 if bits > 8 else np.uint8)


def syntax_array(array: np.ndarray, syntax: str) -> np.ndarray:
    """What a syntax can hold: baseline JPEG is 8-bit, so deeper images keep their top 8 bits there."""
    if syntax == "JPEGBaseline8Bit" and array.dtype != np.uint8:
        return (array >> max(0, int(array.max()).bit_length() - 8)).astype(np.uint8)
    return array
