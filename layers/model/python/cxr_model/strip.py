"""What is stored carries the pixels and what decoding them needs, nothing else (issue 25): PNG ancillary chunks,
JPEG APPn and COM segments (also inside an encapsulated DICOM frame), bytes past the image's end, native PixelData
past the declared image, and allow-listed DICOM values that are not what their attribute holds are dropped.
Losslessly: chunks, segments and entropy-coded data are copied byte for byte, nothing is re-encoded. The cache key
stays the upload's SHA-256; this shapes only the stored copy (after the checks, after de-identification)."""
from __future__ import annotations

import io
import re
import warnings

from .errors import ImageError

PNG_KEPT = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")  # tRNS: transparency changes the decoded grey levels
_APP0, _APP15, _COM, _SOS, _EOI, _SOF55 = 0xE0, 0xEF, 0xFE, 0xDA, 0xD9, 0xF7
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                  "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
_DROPPED_DICOM = ("ExtendedOffsetTable", "ExtendedOffsetTableLengths")  # single frames need no offset table


def strip_metadata(data: bytes, fmt: str) -> bytes:
    """The stored form of a checked upload ('png' | 'jpeg' | 'dicom', DICOM already de-identified)."""
    if fmt == "png":
        return strip_png(data)
    if fmt == "jpeg":
        return strip_jpeg(data)
    if fmt == "dicom":
        return strip_dicom(data)
    return data


def strip_png(data: bytes) -> bytes:
    """Signature and critical chunks (with tRNS) as they were, CRCs included; text, eXIf, time, colour and private
    chunks and anything after IEND are dropped."""
    kept, pos = [data[:8]], 8
    while pos + 12 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind in PNG_KEPT:
            kept.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(kept)


def strip_jpeg(data: bytes) -> bytes:
    """Every marker segment and entropy-coded scan as it was, but APPn and COM segments (an Adobe APP14, which tells
    the decoder the colour transform, stays) and anything after EOI. A JPEG-LS frame (SOF55) escapes 0xFF in its
    scans by bit stuffing, so there 0xFF followed by a byte below 0x80 is data, not a marker."""
    out, pos, jpeg_ls = bytearray(data[:2]), 2, False
    while pos + 1 < len(data):
        if data[pos] != 0xFF:  # checked uploads never get here; refuse rather than store what was not followed
            raise ImageError.undecodable(f"JPEG structure could not be followed at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == _EOI:
            out += b"\xff\xd9"
            break
        if marker in _STANDALONE:
            out += data[pos:pos + 2]
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos:end]
        jpeg_ls = jpeg_ls or marker == _SOF55
        if not (_APP0 <= marker <= _APP15 or marker == _COM) or (marker == 0xEE and segment[4:9] == b"Adobe"):
            out += segment
        pos = end
        if marker == _SOS:
            scan_end = _scan_end(data, pos, jpeg_ls)
            out += data[pos:scan_end]
            pos = scan_end
    return bytes(out)


def _scan_end(data: bytes, pos: int, jpeg_ls: bool = False) -> int:
    """Where a scan's entropy-coded data ends: the first marker that is not a stuffed 0x00 or a restart marker (in
    JPEG-LS, not a bit-stuffed byte below 0x80)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or (jpeg_ls and following < 0x80):
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos


def strip_dicom(data: bytes) -> bytes:
    """A de-identified DICOM with its allow-listed values validated (an element whose VR is not its attribute's, or
    a SOP class that is not a UID, is dropped), no offset table, native PixelData cut to the declared image, and
    APPn/COM segments removed from encapsulated JPEG frames. Native pixel data of defined length is copied from the
    input (cut where it runs past the image), not read and written again: the same bytes the full rewrite gives."""
    import pydicom
    from pydicom.datadict import dictionary_VR
    from pydicom.encaps import encapsulate, generate_frames

    from .dicom_splice import DEFER_BYTES, PIXEL_DATA, cut_to, pixel_element_bytes

    ds = _read_dicom(data, DEFER_BYTES)
    spliced = pixel_element_bytes(data, ds)
    if spliced is not None and max(ds.keys()) == PIXEL_DATA:
        del ds[PIXEL_DATA]  # before anything below walks the elements: walking would read the deferred value
    elif PIXEL_DATA in ds and ds.get_item(PIXEL_DATA, keep_deferred=True).value is None:
        spliced, ds = None, _read_dicom(data, None)  # a deferred value that is not spliced: read it after all
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    for holder, keyword in ((ds, "SOPClassUID"), (meta, "MediaStorageSOPClassUID")):
        if holder is not None and keyword in holder and not _is_uid(holder[keyword].value):
            del holder[keyword]
    for keyword in _DROPPED_DICOM:
        if keyword in ds:
            del ds[keyword]
    for element in list(ds):
        if element.tag != PIXEL_DATA and element.VR not in dictionary_VR(element.tag).split(" or "):
            del ds[element.tag]
    if spliced is not None:
        needed = _native_pixel_bytes(ds)
        value_bytes = len(spliced) - (8 if ds.is_implicit_VR else 12)
        if value_bytes > needed + needed % 2:
            spliced = cut_to(spliced, ds, needed)
    elif "PixelData" in ds:
        if syntax in _JPEG_SYNTAXES:
            frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
            ds.PixelData = encapsulate([strip_jpeg(frame) for frame in frames])
            ds["PixelData"].is_undefined_length = True
        elif not pydicom.uid.UID(syntax).is_compressed:
            needed = _native_pixel_bytes(ds)
            if len(ds.PixelData) > needed + needed % 2:
                ds.PixelData = ds.PixelData[:needed] + b"\0" * (needed % 2)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    if spliced is not None:
        out.write(spliced)
    return out.getvalue()


def _read_dicom(data: bytes, defer_size: int | None):
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True, defer_size=defer_size)


def _native_pixel_bytes(ds) -> int:
    return (int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.get("SamplesPerPixel", 1))
            * (int(ds.BitsAllocated) // 8))


def _is_uid(value) -> bool:
    text = str(value)
    return len(text) <= 64 and bool(_UID.match(text))
