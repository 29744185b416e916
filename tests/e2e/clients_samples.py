"""Byte-unique copies of the sample X-rays for the client tests: same pixels, a new SHA-256, so each run makes
fresh jobs and never turns another e2e test's first upload of a sample into a cache hit."""
from __future__ import annotations

import io
import struct
import uuid
import zlib
from pathlib import Path

import pydicom

from .conftest import XRAYS


def unique_copy(name: str, folder: Path, new_name: str | None = None) -> Path:
    """Copy XRAYS/name into folder with a random tag in a spot every decoder ignores."""
    data = (XRAYS / name).read_bytes()
    tag = f"cxr-client-test {uuid.uuid4()}".encode()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then the IHDR chunk (length, type, 13 data bytes, CRC)
        payload = b"Comment\x00" + tag
        chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))
        data = data[:ihdr_end] + chunk + data[ihdr_end:]
    elif data.startswith(b"\xff\xd8"):
        data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + data[2:]  # a JPEG COM segment
    elif data[128:132] == b"DICM":
        data = _tag_dicom(data, tag.decode())
    else:
        raise ValueError(f"{name}: not a PNG, JPEG or DICOM sample")
    target = folder / (new_name or name)
    target.write_bytes(data)
    return target


def _tag_dicom(data: bytes, tag: str) -> bytes:
    """A tag in DerivationDescription: the service de-identifies DICOM before hashing it, which drops the preamble,
    private tags and identifying attributes, but keeps this non-identifying one."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.DerivationDescription = tag
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def clinical_size_dicom(folder: Path, name: str = "clinical_15mb.dcm", rows: int = 3000, columns: int = 2500) -> Path:
    """An uncompressed 16-bit DX image of a clinical size (3000x2500 = 15 MB of pixels), made from the PNG sample's
    pixels; byte-unique like unique_copy. Too large for API Gateway + Lambda: only a presigned upload carries it."""
    import numpy as np
    from PIL import Image
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = Image.open(XRAYS / "00000001_000.png").convert("L").resize((columns, rows), Image.BILINEAR)
    array = (np.asarray(pixels, dtype=np.uint16) * 16).astype("<u2")  # 12 bits stored in 16
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(name), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID, dataset.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    dataset.Modality, dataset.PhotometricInterpretation, dataset.SamplesPerPixel = "DX", "MONOCHROME2", 1
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.DerivationDescription = f"cxr-client-test {uuid.uuid4()}"
    dataset.PixelData = array.tobytes()
    target = folder / name
    dataset.save_as(target, enforce_file_format=True)
    return target
