"""Local image files: find them in a folder, read them, tell PNG/JPEG/DICOM from their first bytes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".dcm": "application/dicom", ".dicom": "application/dicom"}


class LocalFileError(Exception):
    """A file the CLI will not upload: missing, unreadable, or neither PNG, JPEG nor DICOM."""


@dataclass(frozen=True)
class ImageFile:
    path: Path
    data: bytes
    media_type: str


def sniff_media_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[128:132] == b"DICM":
        return "application/dicom"
    return None


def read_image(path: Path) -> ImageFile:
    """The bytes decide the media type; the extension only vouches for files without a magic number
    (a DICOM without its preamble); the server checks the bytes again either way."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LocalFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LocalFileError(f"{path}: is a directory (use `cxr submit-dir`)") from None
    except OSError as error:
        raise LocalFileError(f"{path}: cannot read: {error.strerror or error}") from None
    media_type = sniff_media_type(data) or EXTENSIONS.get(path.suffix.lower())
    if not data or media_type is None:
        raise LocalFileError(f"{path}: not a PNG, JPEG or DICOM file")
    return ImageFile(path, data, media_type)


def find_images(folder: Path, recursive: bool = False) -> list[Path]:
    found, _ = scan_folder(folder, recursive)
    if not found:
        raise LocalFileError(f"{folder}: no PNG, JPEG or DICOM files")
    return found


_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010), little and big endian
_HEAD_BYTES = 132


def classify(path: Path) -> str | None:
    """None for a file worth uploading; else why it is skipped. An image extension vouches for a file (the
    server judges its bytes); any other file is looked at: PNG/JPEG signatures, DICOM's `DICM` at offset 128.
    A DICOM without a Pixel Data element (DICOMDIR, structured reports, presentation states) has no image."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as error:
        return None if path.suffix.lower() in EXTENSIONS else f"cannot read: {error.strerror or error}"
    media_type = sniff_media_type(head)
    if path.name.upper() == "DICOMDIR" or (media_type == "application/dicom" and not _has_pixel_data(path)):
        return "DICOM without pixel data (DICOMDIR, report or other non-image object)"
    if media_type is not None or path.suffix.lower() in EXTENSIONS:
        return None
    return "not a PNG, JPEG or DICOM file"


def _has_pixel_data(path: Path) -> bool:
    overlap = len(_PIXEL_DATA_TAGS[0]) - 1
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            window = tail + chunk
            if any(tag in window for tag in _PIXEL_DATA_TAGS):
                return True
            tail = window[-overlap:]
    return False


def scan_folder(folder: Path, recursive: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files to upload, [(file skipped, why)]), both sorted; DICOM files need no extension."""
    if not folder.is_dir():
        raise LocalFileError(f"{folder}: not a directory")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found, skipped = [], []
    for path in sorted(p for p in candidates if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # hidden files and folders, the manifest among them
        reason = classify(path)
        if reason is None:
            found.append(path)
        else:
            skipped.append((path, reason))
    return found, skipped
