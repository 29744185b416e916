"""De-identification of DICOM uploads before they are stored: an allow-list keeps only what decoding needs.

Stronger than DICOM PS3.15's basic profile (which lists what to remove and keeps the rest): nothing outside the
allow-list survives, at the top level or in sequences (no sequence is kept at all), and no date, name, free text,
device or private tag can slip through a table that lacks it. SOPInstanceUID is replaced with a UID derived from
the upload's SHA-256 (the same bytes always give the same stored file, which infer checks by hash). Text burned
into the pixels stays: pixels are never altered.
"""
from __future__ import annotations

import hashlib
import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from .dicom_splice import PIXEL_DATA, pixel_element, read_dataset

# Image Pixel module (PS3.3 C.7.6.3) and the frame count: what pydicom needs to decode, what cxr_model checks
KEPT_KEYWORDS = (
    "SOPClassUID", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelAspectRatio",
    "ExtendedOffsetTable", "ExtendedOffsetTableLengths", "PixelData",
)
KEPT_FILE_META = ("FileMetaInformationVersion", "MediaStorageSOPClassUID", "TransferSyntaxUID")
_KEPT_TAGS = frozenset(pydicom.datadict.tag_for_keyword(keyword) for keyword in KEPT_KEYWORDS)




def deidentify_dicom(data: bytes, upload_sha256: str | None = None) -> bytes:
    """The same image with only the allow-listed attributes; pixel data and transfer syntax untouched.

    Native pixel data is not read or re-written: the kept header is written and the original PixelData element (its
    header and value bytes) spliced after it, byte for byte what writing it would give. upload_sha256: the upload's
    SHA-256 where the caller has it already (submit does), else computed here."""
    source = read_dataset(data)
    element = pixel_element(data, source)
    spliced = None if element is None else element.view(data)
    kept = Dataset()
    for tag in source.keys():  # in tag order; values stay as read (the pixel data's bytes are not decoded)
        if tag in _KEPT_TAGS and not (spliced is not None and tag == PIXEL_DATA):
            kept.add(source[tag])
    digest = upload_sha256 or hashlib.sha256(data).hexdigest()
    uid = generate_uid(entropy_srcs=[digest])  # 2.25.<digits>: no link to the original
    kept.SOPInstanceUID = uid
    meta = FileMetaDataset()
    source_meta = getattr(source, "file_meta", None)
    for keyword in KEPT_FILE_META:
        if source_meta is not None and keyword in source_meta:
            setattr(meta, keyword, source_meta[keyword].value)
    meta.MediaStorageSOPInstanceUID = uid
    kept.file_meta = meta
    kept.preamble = b"\0" * 128
    kept.set_original_encoding(source.is_implicit_VR, source.is_little_endian, source.original_character_set)
    out = io.BytesIO()
    kept.save_as(out, enforce_file_format=False)
    return out.getvalue() if spliced is None else b"".join((out.getbuffer(), spliced))  # one copy of the pixels
