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
    if not folder.is_dir():
        raise LocalFileError(f"{folder}: not a directory")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not found:
        raise LocalFileError(f"{folder}: no .png, .jpg, .jpeg, .dcm or .dicom files")
    return found
