"""Format sniffing, structure-level upload validation and PNG/JPEG decoding (DICOM lives in dicom.py)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image

from .dicom import check_dicom, dicom_jpeg_frame, read_dicom
from .errors import ImageError
from .pixels import JPEG_MAGIC, Pixels, check_size
from .png_decode import fast_png_decode
from .raster_check import check_jpeg_structure, check_png_structure

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_RASTER_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str  # PIL mode, or the DICOM photometric interpretation


def sniff_format(data: bytes) -> str | None:
    """'png' | 'jpeg' | 'dicom' from the bytes themselves, None for anything else."""
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data[128:132] == b"DICM":
        return "dicom"
    if data[:2] in (b"\x02\x00", b"\x08\x00") and read_dicom(data, quiet=True) is not None:
        return "dicom"  # preamble-less DICOM that pydicom still reads
    return None


def _open_raster(data: bytes, fmt: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG" if fmt == "png" else "JPEG"])
    except Exception as exc:
        raise ImageError.undecodable(f"{fmt.upper()} header could not be read ({type(exc).__name__})") from None
    check_size(*image.size)
    if image.mode not in _RASTER_MODES:
        raise ImageError.undecodable(f"{fmt.upper()} pixel format {image.mode} is not supported")
    if getattr(image, "n_frames", 1) > 1:
        raise ImageError.undecodable(f"multi-frame {fmt.upper()} images are not supported")
    return image


def check_image(data: bytes) -> ImageInfo:
    """Validate an upload by its structure, decoding no pixels: 415 for foreign formats, 422 for what the headers,
    chunk/segment framing and CRCs show broken or absurd. Damage only a full decode finds fails the job at infer."""
    fmt = sniff_format(data)
    if fmt is None and data[:4] == b"DICM":  # decided (issue 25): a Part 10 file has its 128-byte preamble
        raise ImageError.unsupported("DICOM file without its 128-byte preamble before 'DICM' (DICOM PS3.10 7.1): "
                                     "send the file as the modality wrote it")
    if fmt is None:
        raise ImageError.unsupported("the upload is not a PNG, JPEG or DICOM image")
    if fmt == "dicom":
        ds = read_dicom(data, defer_pixels=True)
        width, height = check_dicom(ds, source=data)
        frame = dicom_jpeg_frame(ds)
        if frame is not None:  # baseline JPEG inside: the same structure check as a plain JPEG upload
            _open_raster(frame, "jpeg")
            check_jpeg_structure(frame)
        return ImageInfo(fmt, width, height, str(ds.PhotometricInterpretation))
    image = _open_raster(data, fmt)
    (check_png_structure if fmt == "png" else check_jpeg_structure)(data)
    return ImageInfo(fmt, image.size[0], image.size[1], image.mode)


def raster_pixels(data: bytes, fmt: str) -> Pixels:
    """Decode a PNG/JPEG as skimage.io.imread would (alpha dropped); colour comes as one interleaved H x W x 3 array.

    PIL packs RGB(A) to H x W x 3 in one pass; the resize sums the channels block by block in float32 (exact for
    integers), so no uint16 R + G + B plane and no single-band packs are made.
    """
    image = _open_raster(data, fmt)
    try:
        decoded = fast_png_decode(data, image) if fmt == "png" else None
        if isinstance(decoded, Image.Image):
            image = decoded
        if image.mode in ("1", "P", "PA"):
            image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else
                                  ("L" if image.mode == "1" else "RGB"))
        array = decoded if isinstance(decoded, np.ndarray) else None
        if fmt == "jpeg":
            array = _jpeg_array(data, image.mode)
        if array is None:
            array = _pixel_array(image, "RGB" if image.mode == "RGBA" else None)
    except (ImageError, MemoryError):
        raise  # out of memory says nothing about the image: infer retries it, never fails it as undecodable
    except Exception as exc:
        raise ImageError.undecodable(f"{fmt.upper()} data is corrupt or truncated ({type(exc).__name__})") from None
    if array.ndim == 3 and array.shape[2] == 2:
        array = array[:, :, 0]
    if array.dtype == np.uint8:
        return Pixels(array, 255)
    if array.dtype != np.uint16 and (array.max(initial=0) > 65535 or array.min(initial=0) < 0):
        raise ImageError.undecodable("PNG pixel values are outside the 16-bit range")
    return Pixels(array, 65535)


def _jpeg_array(data: bytes, mode: str) -> np.ndarray | None:
    """The RGB / grey JPEG Pillow would decode, by libjpeg-turbo straight into numpy (no PIL image, no pack), or None.

    Same library and settings as Pillow (accurate integer DCT, fancy upsampling), so the pixels are identical
    (tests/unit/test_model_decode.py). strict: any libjpeg warning or error returns None, and Pillow decides.
    """
    if mode not in ("RGB", "L"):
        return None
    try:
        array = simplejpeg.decode_jpeg(data, colorspace="RGB" if mode == "RGB" else "GRAY", strict=True)
    except ValueError:
        return None
    return array if mode == "RGB" else array.reshape(array.shape[:2])


def _pixel_array(image: Image.Image, rgb_of: str | None = None) -> np.ndarray:
    """np.asarray(image) (or, rgb_of="RGB", the H x W x 3 colour of an RGBA image) without np.asarray's transient
    second copy: PIL's tobytes() joins the raw encoder's chunks, 2 x the pixels at its peak; here each chunk goes
    straight into place."""
    image.load()
    if rgb_of is None:
        row = np.asarray(image.crop((0, 0, image.width, 1)))  # dtype and channels as numpy would give them
        array = np.empty((image.height, *row.shape[1:]), row.dtype)
    else:
        array = np.empty((image.height, image.width, 3), np.uint8)
    target = array.reshape(-1).view(np.uint8)
    encoder = Image._getencoder(image.mode, "raw", rgb_of or image.mode)
    position, status = 0, 0
    try:
        encoder.setimage(image.im, (0, 0, *image.size))
        while not status:
            _, status, chunk = encoder.encode(1 << 20)
            target[position:position + len(chunk)] = np.frombuffer(chunk, np.uint8)
            position += len(chunk)
    finally:
        encoder.cleanup()
    if status < 0 or position != target.size:
        raise ImageError.undecodable("decoded pixels could not be read")
    return array

