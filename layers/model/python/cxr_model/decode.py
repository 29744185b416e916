"""Format sniffing, cheap upload validation and pixel decoding for PNG, JPEG and DICOM."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import ImageError

MAX_PIXELS = 50_000_000  # decompression-bomb cap, checked from the header before any pixel is decoded
MIN_SIDE = 32
MAX_ASPECT = 4.0
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_RASTER_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I"}
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


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
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data[128:132] == b"DICM":
        return "dicom"
    if data[:2] in (b"\x02\x00", b"\x08\x00") and _read_dicom(data, quiet=True) is not None:
        return "dicom"  # preamble-less DICOM that pydicom still reads
    return None


def _read_dicom(data: bytes, quiet: bool = False):
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            ds.get("Rows")  # force parsing of the leading elements
    except Exception as exc:
        if quiet:
            return None
        raise ImageError.undecodable(f"DICOM file could not be parsed ({type(exc).__name__})") from None
    if "Rows" not in ds or "Columns" not in ds:
        if quiet:
            return None
        raise ImageError.undecodable("DICOM file has no image dimensions")
    return ds


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError.undecodable(f"image of {width}x{height} pixels exceeds the {MAX_PIXELS // 1_000_000} MP limit")
    if min(width, height) < MIN_SIDE:
        raise ImageError.undecodable(f"image of {width}x{height} pixels is too small (minimum side {MIN_SIDE})")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError.undecodable(f"image of {width}x{height} pixels has an implausible aspect ratio")


def _open_raster(data: bytes, fmt: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG" if fmt == "png" else "JPEG"])
    except Exception as exc:
        raise ImageError.undecodable(f"{fmt.upper()} header could not be read ({type(exc).__name__})") from None
    _check_size(*image.size)
    if image.mode not in _RASTER_MODES:
        raise ImageError.undecodable(f"{fmt.upper()} pixel format {image.mode} is not supported")
    if getattr(image, "n_frames", 1) > 1:
        raise ImageError.undecodable(f"multi-frame {fmt.upper()} images are not supported")
    return image


def _check_dicom(ds) -> tuple[int, int]:
    from pydicom.pixels import get_decoder

    height, width = int(ds.Rows), int(ds.Columns)
    _check_size(width, height)
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
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is not None and syntax.is_compressed:
        try:
            available = get_decoder(syntax).is_available
        except Exception:
            available = False
        if not available:
            raise ImageError.undecodable(f"DICOM transfer syntax {syntax.name} cannot be decoded here")
    elif len(ds.PixelData) < width * height * bits_allocated // 8:
        raise ImageError.undecodable("DICOM pixel data is truncated")
    return width, height


def check_image(data: bytes) -> ImageInfo:
    """Validate an upload without a full decode: 415 for foreign formats, 422 for broken or absurd images."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError.unsupported("the upload is not a PNG, JPEG or DICOM image")
    if fmt == "dicom":
        ds = _read_dicom(data)
        width, height = _check_dicom(ds)
        frame = dicom_jpeg_frame(ds)
        if frame is not None:  # baseline JPEG inside: verify it as cheaply as a plain JPEG upload
            _verify_raster(_open_raster(frame, "jpeg"), "jpeg")
        return ImageInfo(fmt, width, height, str(ds.PhotometricInterpretation))
    image = _open_raster(data, fmt)
    info = ImageInfo(fmt, image.size[0], image.size[1], image.mode)  # before a draft decode shrinks the image
    _verify_raster(image, fmt)
    return info


def _verify_raster(image: Image.Image, fmt: str) -> None:
    try:
        if fmt == "png":
            image.verify()  # walks every chunk and checks CRCs: catches truncation without inflating pixels
        else:
            image.draft("L", (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
            image.load()  # a 1/8-scale decode still parses the whole entropy-coded stream
    except Exception as exc:
        raise ImageError.undecodable(f"{fmt.upper()} data is corrupt or truncated ({type(exc).__name__})") from None


@dataclass
class Pixels:
    """Decoded integer pixels (H x W or H x W x 3) and the maximum value of their bit depth."""
    array: np.ndarray
    maxval: int


def raster_pixels(data: bytes, fmt: str, draft_size: tuple[int, int] | None = None) -> Pixels:
    """Decode a PNG/JPEG as skimage.io.imread would (alpha dropped); draft_size asks JPEG for a reduced-scale decode."""
    image = _open_raster(data, fmt)
    try:
        if draft_size is not None and fmt == "jpeg":
            image.draft(image.mode, draft_size)
        if image.mode in ("1", "P", "PA"):
            image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else
                                  ("L" if image.mode == "1" else "RGB"))
        array = np.asarray(image)
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


def dicom_dataset(data: bytes):
    ds = _read_dicom(data)
    _check_dicom(ds)
    return ds


def dicom_jpeg_frame(ds) -> bytes | None:
    """The single 8-bit baseline JPEG frame of an encapsulated DICOM (for reduced-scale decoding), else None."""
    from pydicom.encaps import generate_frames
    from pydicom.uid import JPEGBaseline8Bit

    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None or file_meta.get("TransferSyntaxUID") != JPEGBaseline8Bit or int(ds.BitsStored) > 8:
        return None
    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:
        return None
    return frame if frame.startswith(_JPEG_MAGIC) else None


def dicom_pixels(data: bytes) -> Pixels:
    return dataset_pixels(dicom_dataset(data))


def dataset_pixels(ds) -> Pixels:
    """xrv.utils.read_xray_dcm's pixels before normalisation: MONOCHROME1 inverted, maxval 2**BitsStored - 1."""
    maxval = 2 ** int(ds.BitsStored) - 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = ds.pixel_array
    except Exception as exc:
        raise ImageError.undecodable(f"DICOM pixel data could not be decoded ({type(exc).__name__})") from None
    if array.ndim != 2:
        raise ImageError.undecodable("DICOM image must be a single 2-D greyscale frame")
    if ds.PhotometricInterpretation == "MONOCHROME1":
        array = maxval - array
    return Pixels(array, maxval)
