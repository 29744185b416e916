"""What is stored carries the pixels and what decoding them needs, nothing else (issue 25): PNG ancillary chunks,
JPEG APPn and COM segments (also inside an encapsulated DICOM frame), bytes past the image's end, native PixelData
past the declared image, and allow-listed DICOM values that are not what their attribute holds are dropped.
Losslessly: chunks, segments and entropy-coded data are copied byte for byte, nothing is re-encoded. The cache key
stays the upload's SHA-256; this shapes only the stored copy (after the checks, after de-identification)."""
from __future__ import annotations

import io
import re

from .errors import ImageError

PNG_KEPT = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")  # tRNS: transparency changes the decoded grey levels
_APP0, _APP15, _COM, _SOS, _EOI, _SOF55 = 0xE0, 0xEF, 0xFE, 0xDA, 0xD9, 0xF7
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
# a marker inside entropy-coded data: 0xFF then neither a stuffed 0x00, a restart marker nor another 0xFF (JPEG-LS:
# nor a bit-stuffed byte below 0x80); searched in C, not walked 0xFF by 0xFF
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_JPEG_LS_MARKER = re.compile(rb"\xff[\x80-\xcf\xd8-\xfe]")
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
    view, kept, pos = memoryview(data), [(0, 8)], 8  # spans of the input: copied once, at the end
    while pos + 12 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind in PNG_KEPT:
            if kept[-1][1] == pos:
                kept[-1] = (kept[-1][0], end)
            else:
                kept.append((pos, end))
        pos = end
        if kind == b"IEND":
            break
    if kept == [(0, len(data))]:
        return data  # nothing to drop: the upload itself, not a copy
    return b"".join(view[start:end] for start, end in kept)


def strip_jpeg(data: bytes) -> bytes:
    """Every marker segment and entropy-coded scan as it was, but APPn and COM segments (an Adobe APP14, which tells
    the decoder the colour transform, stays) and anything after EOI. A JPEG-LS frame (SOF55) escapes 0xFF in its
    scans by bit stuffing, so there 0xFF followed by a byte below 0x80 is data, not a marker."""
    view = memoryview(data)
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
        jpeg_ls = jpeg_ls or marker == _SOF55
        if not (_APP0 <= marker <= _APP15 or marker == _COM) or (marker == 0xEE and data[pos + 4:pos + 9] == b"Adobe"):
            out += view[pos:end]
        pos = end
        if marker == _SOS:
            scan_end = _scan_end(data, pos, jpeg_ls)
            out += view[pos:scan_end]
            pos = scan_end
    return bytes(out)


def _scan_end(data: bytes, pos: int, jpeg_ls: bool = False) -> int:
    """Where a scan's entropy-coded data ends: the first marker that is not a stuffed 0x00 or a restart marker (in
    JPEG-LS, not a bit-stuffed byte below 0x80); fill bytes (0xFF 0xFF) belong to the marker after them."""
    found = (_JPEG_LS_MARKER if jpeg_ls else _JPEG_MARKER).search(data, pos)
    return found.end() - 2 if found else len(data)


def strip_dicom(data: bytes) -> bytes:
    """A de-identified DICOM with its allow-listed values validated (an element whose VR is not its attribute's, or
    a SOP class that is not a UID, is dropped), no offset table, native PixelData cut to the declared image, and
    APPn/COM segments removed from encapsulated JPEG frames. Native pixel data of defined length is copied from the
    input (cut where it runs past the image), not read and written again: the same bytes the full rewrite gives."""
    import pydicom
    from pydicom.datadict import dictionary_VR
    from pydicom.encaps import encapsulate, generate_frames

    from .dicom_splice import PIXEL_DATA, pixel_element, read_dataset

    ds = read_dataset(data)
    pixels = pixel_element(data, ds)
    spliced = None if pixels is None else pixels.view(data)
    if spliced is not None and max(ds.keys()) == PIXEL_DATA:
        del ds[PIXEL_DATA]  # before anything below walks the elements: walking would read the deferred value
    elif PIXEL_DATA in ds and ds.get_item(PIXEL_DATA, keep_deferred=True).value is None:
        spliced, ds = None, read_dataset(data, None)  # a deferred value that is not spliced: read it after all
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    dropped = 0
    for holder, keyword in ((ds, "SOPClassUID"), (meta, "MediaStorageSOPClassUID")):
        if holder is not None and keyword in holder and not _is_uid(holder[keyword].value):
            del holder[keyword]
            dropped += 1
    for keyword in _DROPPED_DICOM:
        if keyword in ds:
            del ds[keyword]
            dropped += 1
    for element in list(ds):
        if element.tag != PIXEL_DATA and element.VR not in dictionary_VR(element.tag).split(" or "):
            del ds[element.tag]
            dropped += 1
    if spliced is not None:
        needed = _native_pixel_bytes(ds)
        if pixels.end - pixels.value_start > needed + needed % 2:
            spliced = pixels.cut(data, needed, ds.is_little_endian)
            dropped += 1
        if not dropped and pixels.end == len(data):
            return data  # nothing to drop (what de-identification writes): the input itself, not a copy
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
    return out.getvalue() if spliced is None else b"".join((out.getbuffer(), spliced))  # one copy of the pixels


def _native_pixel_bytes(ds) -> int:
    return (int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.get("SamplesPerPixel", 1))
            * (int(ds.BitsAllocated) // 8))


def _is_uid(value) -> bool:
    text = str(value)
    return len(text) <= 64 and bool(_UID.match(text))
