"""DICOM parsing, validation and pixels, with xrv.utils.read_xray_dcm's semantics."""
from __future__ import annotations

import io
import warnings

import numpy as np

from .dicom_frames import check_frame
from .dicom_inflate import check_inflation
from .errors import ImageError, reraise_unless_decoder_failure
from .pixels import JPEG_MAGIC, Pixels, check_size

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99")
# pydicom tries pylibjpeg (libjpeg) first for JPEG-LS; CharLS decodes the same pixels ~4x faster (JPEG-LS decoding
# is integer-exact by the standard, and tests/integration/test_dicom_syntaxes.py checks it against the default order).
_FASTER_PLUGIN = {"1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls"}
_DEFLATED = "1.2.840.10008.1.2.1.99"
_PIXEL_DATA = 0x7FE00010


def read_dicom(data: bytes, quiet: bool = False, defer_pixels: bool = False):
    """defer_pixels: leave values over 64 KiB in the upload (pydicom reads them on first access), so that
    native pixels can be read in place (dicom_pixels) instead of copied."""
    import pydicom

    try:
        check_inflation(data)  # pydicom inflates a deflated dataset whole, with no bound
    except ImageError:
        if quiet:
            return None
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True, defer_size=65536 if defer_pixels else None)
            ds.get("Rows")  # force parsing of the leading elements
    except Exception as exc:
        if quiet:
            return None
        raise ImageError.undecodable(f"DICOM file could not be parsed ({type(exc).__name__})") from None
    try:
        has_dimensions = "Rows" in ds and "Columns" in ds
    except Exception:
        has_dimensions = False
    if not has_dimensions:
        if quiet:
            return None
        raise ImageError.undecodable("DICOM file has no image dimensions")
    return ds


def check_dicom(ds, frames: bool = True, source: bytes | None = None) -> tuple[int, int]:
    """Structural checks, and (frames) the compressed frame's header and end marker, which the worker skips:
    its decode tells. pydicom parses lazily, so any error it raises on the way is a 422, never a crash.
    source: the bytes `ds` was read from with defer_pixels."""
    try:
        return _check_dicom(ds, frames, source)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError.undecodable(f"DICOM header is malformed ({type(exc).__name__})") from None


def _check_dicom(ds, frames: bool, source: bytes | None) -> tuple[int, int]:
    from pydicom.pixels import get_decoder

    height, width = int(ds.Rows), int(ds.Columns)
    check_size(width, height)
    if "PixelData" not in ds:
        raise ImageError.undecodable("DICOM file has no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in _MONOCHROME:
        raise ImageError.undecodable(f"DICOM photometric interpretation {photometric or 'missing'} is not supported")
    if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise ImageError.undecodable("DICOM image must be a single 2-D greyscale frame")
    bits_stored, bits_allocated = int(ds.get("BitsStored", 0)), int(ds.get("BitsAllocated", 0))
    if bits_allocated not in (8, 16) or not 1 <= bits_stored <= bits_allocated:
        raise ImageError.undecodable(f"DICOM bit depth {bits_stored}/{bits_allocated} is not supported")
    if photometric == "MONOCHROME1" and int(ds.get("PixelRepresentation", 0)) == 1 and bits_stored == bits_allocated:
        # the reference inverts as 2**BitsStored - 1 - pixels, past the signed type's range: refused here, not by
        # the worker after a 201 (dataset_pixels says the same)
        raise ImageError.undecodable(f"DICOM MONOCHROME1 with {bits_stored}-bit signed pixels is not supported")
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is None:
        raise ImageError.undecodable("DICOM file meta has no transfer syntax")
    if not syntax.is_transfer_syntax:
        raise ImageError.undecodable("DICOM transfer syntax UID names no transfer syntax")
    if syntax.is_compressed:
        try:
            available = get_decoder(syntax).is_available
        except Exception:
            available = False
        if not available:
            raise ImageError.undecodable(f"DICOM transfer syntax {syntax.name} cannot be decoded here")
        if frames:
            check_frame(ds, syntax)
    elif len(pixel_buffer(ds, source)) < width * height * bits_allocated // 8:
        raise ImageError.undecodable("DICOM pixel data is truncated")
    return width, height


def dicom_dataset(data: bytes):
    """The worker's read: PixelData deferred (pass `data` to dataset_pixels to read native pixels in place)."""
    ds = read_dicom(data, defer_pixels=True)
    check_dicom(ds, frames=False, source=data)
    return ds


def pixel_buffer(ds, source: bytes | None = None):
    """PixelData's value: a zero-copy slice of `source` where the file holds it as is (read with defer_pixels,
    not deflated), else pydicom's own copy."""
    element = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    deferred = getattr(element, "value", b"") is None and getattr(element, "value_tell", None) is not None
    if source is None or not deferred or ds.file_meta.TransferSyntaxUID == _DEFLATED:
        return ds.PixelData
    return memoryview(source)[element.value_tell:element.value_tell + element.length]


def dicom_jpeg_frame(ds) -> bytes | None:
    """The single 8-bit baseline JPEG frame of an encapsulated DICOM (for reduced-scale decoding), else None."""
    from pydicom.encaps import generate_frames
    from pydicom.uid import JPEGBaseline8Bit

    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None or file_meta.get("TransferSyntaxUID") != JPEGBaseline8Bit:
        return None
    try:
        if int(ds.BitsStored) > 8:
            return None
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:
        return None
    return frame if frame.startswith(JPEG_MAGIC) else None


def dicom_pixels(data: bytes) -> Pixels:
    return dataset_pixels(dicom_dataset(data), data)


def dataset_pixels(ds, source: bytes | None = None) -> Pixels:
    """xrv.utils.read_xray_dcm's pixels before normalisation: pixel_array (no rescale, no VOI LUT), MONOCHROME1
    inverted as maxval - pixels (Pixels.invert, not copied), maxval = 2**BitsStored - 1 (layers/model/README.md,
    "DICOM")."""
    syntax = ds.file_meta.TransferSyntaxUID
    try:
        maxval = 2 ** int(ds.BitsStored) - 1
        invert = ds.PhotometricInterpretation == "MONOCHROME1"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = (_native_array(ds, pixel_buffer(ds, source)) if syntax in _NATIVE_LITTLE_ENDIAN
                     else _decoded_array(ds, syntax))
    except BaseException as exc:
        reraise_unless_decoder_failure(exc)
        raise ImageError.undecodable(f"DICOM {syntax.name} pixel data could not be decoded ({type(exc).__name__})"
                                     ) from None
    if array.ndim != 2:
        raise ImageError.undecodable("DICOM image must be a single 2-D greyscale frame")
    if not invert:
        return Pixels(array, maxval)
    if maxval > np.iinfo(array.dtype).max:  # the reference's `maxval - data` overflows (NumPy 2 raises) here too
        raise ImageError.undecodable(f"DICOM MONOCHROME1 with {ds.BitsStored}-bit signed pixels is not supported")
    return Pixels(array, maxval, invert=True)


def _decoded_array(ds, syntax):
    from pydicom.pixels import pixel_array

    plugin = _FASTER_PLUGIN.get(syntax)
    if plugin is not None:
        try:
            return pixel_array(ds, decoding_plugin=plugin)
        except Exception:
            pass  # whatever the faster plugin rejects gets the default order's verdict
    return pixel_array(ds)


def _native_array(ds, buffer) -> np.ndarray:
    """pydicom's pixel_array for little-endian native pixels without its copy: a view on PixelData, and pydicom's
    unused-bits correction (high bits cleared, or sign-extended from BitsStored) only when it changes a value."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    allocated, stored = int(ds.BitsAllocated), int(ds.BitsStored)
    signed = int(ds.PixelRepresentation) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    array = np.frombuffer(buffer, dtype=dtype, count=rows * columns).reshape(rows, columns)
    shift = allocated - stored
    if not shift:
        return array
    if signed:
        low, high = -(1 << (stored - 1)), (1 << (stored - 1)) - 1
        if low <= array.min() and array.max() <= high:
            return array
        corrected = np.left_shift(array, shift)
        return np.right_shift(corrected, shift, out=corrected)
    mask = (1 << stored) - 1
    return array if array.max() <= mask else np.bitwise_and(array, mask)
