"""Format sniffing, cheap upload validation and PNG/JPEG decoding (DICOM lives in dicom.py)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .dicom import check_dicom, dicom_jpeg_frame, read_dicom
from .errors import ImageError
from .pixels import JPEG_MAGIC, Pixels, check_size
from .png_check import check_png_payload

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
    """Validate an upload without a full decode: 415 for foreign formats, 422 for broken or absurd images."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError.unsupported("the upload is not a PNG, JPEG or DICOM image")
    if fmt == "dicom":
        ds = read_dicom(data)
        width, height = check_dicom(ds)
        frame = dicom_jpeg_frame(ds)
        if frame is not None:  # baseline JPEG inside: verify it as cheaply as a plain JPEG upload
            _verify_raster(_open_raster(frame, "jpeg"), "jpeg", frame)
        return ImageInfo(fmt, width, height, str(ds.PhotometricInterpretation))
    image = _open_raster(data, fmt)
    info = ImageInfo(fmt, image.size[0], image.size[1], image.mode)  # before a draft decode shrinks the image
    _verify_raster(image, fmt, data)
    return info


def _verify_raster(image: Image.Image, fmt: str, data: bytes) -> None:
    try:
        if fmt == "png":
            image.verify()  # walks every chunk and checks CRCs
            check_png_payload(data)  # verify() never inflates IDAT: a lying IHDR would pass it
        else:
            image.draft("L", (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
            image.load()  # a 1/8-scale decode still parses the whole entropy-coded stream
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError.undecodable(f"{fmt.upper()} data is corrupt or truncated ({type(exc).__name__})") from None


def raster_pixels(data: bytes, fmt: str) -> Pixels:
    """Decode a PNG/JPEG as skimage.io.imread would (alpha dropped); colour comes as R + G + B with maxval 765.

    normalize(R + G + B, 3 * 255) is exactly the mean over RGB of normalize(channel, 255), xrv's order, and a
    single-channel image costs the resize a third of an interleaved H x W x 3 one.
    """
    image = _open_raster(data, fmt)
    try:
        if image.mode in ("1", "P", "PA"):
            image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else
                                  ("L" if image.mode == "1" else "RGB"))
        if image.mode in ("RGB", "RGBA"):
            return Pixels(_channel_sum(image), 3 * 255)
        array = _pixel_array(image)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError.undecodable(f"{fmt.upper()} data is corrupt or truncated ({type(exc).__name__})") from None
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[:, :, :-1] if array.shape[2] == 4 else array[:, :, 0]
    if array.dtype == np.uint8:
        return Pixels(array, 255)
    if array.max(initial=0) > 65535 or array.min(initial=0) < 0:
        raise ImageError.undecodable("PNG pixel values are outside the 16-bit range")
    return Pixels(array, 65535)


def _pixel_array(image: Image.Image, band: str | None = None) -> np.ndarray:
    """np.asarray(image), or one 8-bit band of it ("R", "G", "B"), without np.asarray's transient second copy: PIL's
    tobytes() joins the raw encoder's chunks, 2 x the pixels at its peak; here each chunk goes straight into place."""
    image.load()
    if band is None:
        row = np.asarray(image.crop((0, 0, image.width, 1)))  # dtype and channels as numpy would give them
        array = np.empty((image.height, *row.shape[1:]), row.dtype)
    else:
        array = np.empty((image.height, image.width), np.uint8)
    target = array.reshape(-1).view(np.uint8)
    encoder = Image._getencoder(image.mode, "raw", band or image.mode)
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


def _channel_sum(image: Image.Image) -> np.ndarray:
    """R + G + B as uint16 from planes PIL packs one band at a time (contiguous adds; no H x W x 3 array)."""
    total = np.add(_pixel_array(image, "R"), _pixel_array(image, "G"), dtype=np.uint16)
    return np.add(total, _pixel_array(image, "B"), out=total)
