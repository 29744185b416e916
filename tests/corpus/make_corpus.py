"""Writes the hostile-upload corpus (small files + manifest.json with the expected answer of each) to tests/corpus/files/.

Run `python -m tests.corpus.make_corpus`; it is deterministic, so the committed files are what it writes.
Inputs over 200 KB (the 10 MB body, multipart bodies) are built at test time by tests/e2e/test_hostile_inputs.py.
"""
from __future__ import annotations

import copy
import io
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
XRAYS = HERE.parents[2] / "shared" / "data" / "xrays"
MAX_FILE_BYTES = 200_000

ACCEPT = {"status": 201}  # a legitimate X-ray: a job, then a COMPLETED result


def reject(status: int, code: str, reason: str) -> dict:
    return {"status": status, "code": code, "reason": reason}


UNSUPPORTED = lambda reason: reject(415, "UNSUPPORTED_MEDIA_TYPE", reason)  # noqa: E731
UNDECODABLE = lambda reason: reject(422, "UNDECODABLE_IMAGE", reason)  # noqa: E731


def failed_at_infer(reason: str) -> dict:
    """Damage that only a full decode finds: submit checks structure only (issue 28), so the upload is accepted (201)
    and its job ends FAILED at infer with an UNDECODABLE_IMAGE reason, after one delivery (no retry)."""
    return {"status": 201, "final": "FAILED", "code": "UNDECODABLE_IMAGE", "reason": reason}


def _xray(size: int = 256) -> Image.Image:
    """The NIH sample radiograph, downscaled so every derived file stays small."""
    return Image.open(XRAYS / "00000001_000.png").convert("L").resize((size, size), Image.LANCZOS)


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes, bit_depth: int = 8, colour: int = 0, ihdr_crc: int | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr, ihdr_crc) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _grey_rows(image: Image.Image) -> bytes:
    pixels = np.asarray(image, dtype=np.uint8)
    return b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per scanline


def _jpeg_with_dimensions(jpeg: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF0 frame header's dimensions (a bomb: the header promises far more than the data holds)."""
    data = bytearray(jpeg)
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def _exif_rotated_jpeg(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    return _save(image, "JPEG", quality=90, exif=exif.tobytes())


def _apng(image: Image.Image) -> bytes:
    second = image.transpose(Image.FLIP_LEFT_RIGHT)
    return _save(image, "PNG", save_all=True, append_images=[second], duration=100)


def _dicom_base(pixels: np.ndarray, **elements) -> pydicom.Dataset:
    """The SIIM sample's header (anonymised) around new, uncompressed pixel data."""
    source = pydicom.dcmread(XRAYS / "siim_pneumothorax_sample.dcm")
    ds = copy.deepcopy(source)
    for keyword in ("LossyImageCompression", "LossyImageCompressionMethod"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.file_meta = FileMetaDataset(source.file_meta)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[repr(elements)])
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.tobytes()
    return ds


def _dicom_bytes(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _voi_lut_dicom() -> bytes:
    pixels = (np.asarray(_xray(200), dtype=np.uint16) * 16)  # 12-bit data in 16-bit words
    ds = _dicom_base(pixels)
    ds.BitsStored, ds.HighBit = 12, 11
    lut = pydicom.Dataset()
    lut.LUTDescriptor = [4096, 0, 8]  # 4096 entries, first input value 0, 8-bit output
    lut.LUTExplanation = "gamma 0.8"
    lut.LUTData = np.array([int(255 * (i / 4095) ** 0.8) for i in range(4096)], dtype="<u2").tobytes()
    ds.VOILUTSequence = pydicom.Sequence([lut])
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    return _dicom_bytes(ds)


def _dicom_without_pixels() -> bytes:
    ds = _dicom_base(np.asarray(_xray(128), dtype=np.uint8))
    del ds.PixelData
    return _dicom_bytes(ds)


def _rgb_dicom() -> bytes:
    rgb = np.asarray(_xray(200).convert("RGB"), dtype=np.uint8)
    ds = _dicom_base(rgb[:, :, 0], SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0)
    ds.PixelData = rgb.tobytes()
    return _dicom_bytes(ds)


def _multiframe_dicom() -> bytes:
    frames = np.stack([np.asarray(_xray(128), dtype=np.uint8)] * 3)
    ds = _dicom_base(frames[0], NumberOfFrames=3)
    ds.PixelData = frames.tobytes()
    return _dicom_bytes(ds)


def _dicom_surgery() -> dict[str, bytes]:
    """Byte edits of a valid DICOM that hypothesis found escaping check_image (see tests/unit/test_hostile_decoder.py)."""
    base = _dicom_bytes(_dicom_base(np.asarray(_xray(96), dtype=np.uint8)))
    rows = base.index(b"\x28\x00\x10\x00US")  # (0028,0010) Rows, US, 2 bytes
    photometric = base.index(b"\x28\x00\x04\x00CS")
    syntax = base.index(b"\x02\x00\x10\x00UI")
    return {
        "dicom_rows_empty_string.dcm": base[:rows] + b"\x28\x00\x10\x00IS\x02\x00  " + base[rows + 10:],
        "dicom_unknown_vr.dcm": base[:photometric + 4] + b"C\x00" + base[photometric + 6:],
        "dicom_unknown_transfer_syntax.dcm": base.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.9.9.9\x00", 1),
        "dicom_no_transfer_syntax.dcm": base[:syntax] + b"\x02\x00\x11\x00UI" + base[syntax + 6:],
    }


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("xray.png", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, _save(_xray(64), "PNG"))
    return out.getvalue()


def _pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def build() -> dict[str, tuple[bytes, dict]]:
    """name -> (bytes, expectation). Expectations follow DESIGN.md and what cxr_model.check_image decides."""
    xray = _xray()
    png = _save(xray, "PNG")
    jpeg = _save(xray, "JPEG", quality=90)
    rows = _grey_rows(xray)
    corpus = {
        "one_byte.bin": (b"\x89", UNSUPPORTED("a single byte is no image")),
        "text.txt": (b"This is a chest X-ray, trust me.\n" * 20, UNSUPPORTED("plain text")),
        "page.html": (b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>\n",
                      UNSUPPORTED("HTML")),
        "document.pdf": (_pdf(), UNSUPPORTED("PDF")),
        "archive.zip": (_zip(), UNSUPPORTED("a ZIP holding a PNG is still a ZIP")),
        "image.gif": (_save(_xray(64), "GIF"), UNSUPPORTED("GIF is not an accepted format")),
        "image.bmp": (_save(_xray(64), "BMP"), UNSUPPORTED("BMP is not an accepted format")),
        "image.tiff": (_save(_xray(64), "TIFF"), UNSUPPORTED("TIFF is not an accepted format")),
        "truncated.png": (png[: len(png) // 2], UNDECODABLE("PNG cut in half")),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], UNDECODABLE("JPEG cut in half")),
        "png_magic_only.png": (png[:8], UNDECODABLE("PNG signature and nothing else")),
        "png_bad_ihdr_crc.png": (_png(256, 256, zlib.compress(rows), ihdr_crc=0xDEADBEEF),
                                 UNDECODABLE("IHDR chunk CRC does not match")),
        "png_bad_idat_crc.png": (png[:-20] + bytes([png[-20] ^ 0xFF]) + png[-19:],
                                 UNDECODABLE("a flipped byte near the end breaks a chunk CRC")),
        "png_ihdr_larger_than_data.png": (_png(1024, 1024, zlib.compress(rows)),
                                          failed_at_infer("IHDR says 1024x1024, IDAT holds 256x256 "
                                                          "pixels: only inflating IDAT shows it")),
        "png_ihdr_smaller_than_data.png": (_png(64, 64, zlib.compress(rows)),
                                           UNDECODABLE("IHDR says 64x64, IDAT holds 256x256 pixels")),
        "png_bomb_100000x100000.png": (_png(100_000, 100_000, zlib.compress(b"\x00" * 1000)),
                                       UNDECODABLE("10 GP declared in a tiny file")),
        "png_bomb_8000x8000_1bit.png": (_save(Image.new("1", (8000, 8000)), "PNG"),
                                        UNDECODABLE("64 MP of zeros in a few kB, over the 50 MP cap")),
        "jpeg_bomb_65000x65000.jpg": (_jpeg_with_dimensions(jpeg, 65000, 65000),
                                      UNDECODABLE("JPEG frame header declares 65000x65000")),
        "png_1x100000.png": (_save(Image.new("L", (100_000, 1)), "PNG"),
                             UNDECODABLE("a 1-pixel-high strip is no radiograph")),
        "png_tiny_8x8.png": (_save(Image.new("L", (8, 8), 128), "PNG"), UNDECODABLE("under the 32-pixel side minimum")),
        "apng_two_frames.png": (_apng(xray), UNDECODABLE("animated PNG: 3-D (frames x H x W) input")),
        "cmyk.jpg": (_save(xray.convert("CMYK"), "JPEG", quality=90),
                     UNDECODABLE("CMYK JPEG: a print separation, not a radiograph")),
        "dicom_no_pixel_data.dcm": (_dicom_without_pixels(), UNDECODABLE("DICOM header without pixel data")),
        "dicom_rgb.dcm": (_rgb_dicom(), UNDECODABLE("RGB DICOM: only MONOCHROME1/2 radiographs are read")),
        "dicom_multiframe.dcm": (_multiframe_dicom(), UNDECODABLE("3 frames: a 3-D volume, not one radiograph")),
        **{name: (data, UNDECODABLE(reason)) for (name, data), reason in zip(_dicom_surgery().items(), [
            "Rows re-typed IS with an empty value", "PhotometricInterpretation with an unknown VR",
            "TransferSyntaxUID that names no transfer syntax", "file meta without TransferSyntaxUID"])},
        "dicom_magic_only.dcm": (bytes(128) + b"DICM", UNDECODABLE("preamble and DICM and nothing else")),
        "polyglot_png_html.png": (png[:33] + b"<html><script>alert(1)</script></html>",
                                  UNDECODABLE("PNG signature + IHDR, then HTML")),
        # legitimate images: accepted, and they complete with a result
        "grey8.png": (png, ACCEPT),
        "grey16.png": (_save(Image.fromarray(np.asarray(xray, dtype=np.uint16) * 257), "PNG"), ACCEPT),
        "palette.png": (_save(xray.convert("RGB").quantize(64), "PNG"), ACCEPT),
        "rgba.png": (_save(xray.convert("RGBA"), "PNG"), ACCEPT),
        "grey_alpha.png": (_save(xray.convert("LA"), "PNG"), ACCEPT),
        "rgb.jpg": (_save(_xray(240).convert("RGB"), "JPEG", quality=90), ACCEPT),
        "exif_rotated.jpg": (_exif_rotated_jpeg(_xray(248)), ACCEPT),
        "exif_stripped.jpg": (_save(_xray(248), "JPEG", quality=90), ACCEPT),  # same pixels as exif_rotated.jpg
        "dicom_voi_lut.dcm": (_voi_lut_dicom(), ACCEPT),
        "dicom_monochrome2_8bit.dcm": (_dicom_bytes(_dicom_base(np.asarray(_xray(192), dtype=np.uint8))), ACCEPT),
    }
    return corpus


def main() -> int:
    FILES.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (data, expectation) in sorted(build().items()):
        if len(data) > MAX_FILE_BYTES:
            raise SystemExit(f"{name} is {len(data)} bytes, over {MAX_FILE_BYTES}: generate it at test time instead")
        (FILES / name).write_bytes(data)
        manifest[name] = {**expectation, "bytes": len(data)}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(manifest)} files ({sum(m['bytes'] for m in manifest.values())} bytes) to {FILES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
