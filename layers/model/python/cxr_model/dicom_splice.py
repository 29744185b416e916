"""Native PixelData copied byte for byte from the upload into a rewritten header, instead of decoded and re-written."""
from __future__ import annotations

import io
import warnings
from typing import NamedTuple

PIXEL_DATA = 0x7FE00010  # the last tag kept: every other one sorts before it
DEFER_BYTES = 65536  # values this large are left unread by read_dataset(defer_size=...)
_DEFLATED = "1.2.840.10008.1.2.1.99"


class PixelElement(NamedTuple):
    """Where the PixelData element lies in the file: its tag, its value, its end."""
    start: int
    value_start: int
    end: int

    def view(self, data: bytes) -> memoryview:
        return memoryview(data)[self.start:self.end]

    def cut(self, data: bytes, needed: int, little_endian: bool) -> bytes:
        """The element with its value cut to the first `needed` bytes (a zero byte added to an odd count, as pydicom
        pads): the same tag and VR, the new length."""
        length = (needed + needed % 2).to_bytes(4, "little" if little_endian else "big")
        return (bytes(data[self.start:self.value_start - 4]) + length
                + bytes(data[self.value_start:self.value_start + needed]) + b"\0" * (needed % 2))


def read_dataset(data: bytes, defer_size: int | None = DEFER_BYTES):
    """The file's dataset, whatever its preamble; values of defer_size bytes or more left unread."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True, defer_size=defer_size)


def pixel_element(data: bytes, source) -> PixelElement | None:
    """The PixelData element as the upload holds it (tag, VR, length, value), where pydicom left its value unread in
    the upload (native pixels of defined length, not deflated; `source` from read_dataset), else None: then it is
    written from its value."""
    meta = getattr(source, "file_meta", None)
    if PIXEL_DATA not in source or meta is None or meta.get("TransferSyntaxUID") == _DEFLATED:
        return None
    element = source.get_item(PIXEL_DATA, keep_deferred=True)
    start, length = getattr(element, "value_tell", None), getattr(element, "length", None)
    if getattr(element, "value", b"") is not None or start is None or length in (None, 0xFFFFFFFF):
        return None
    little = source.is_little_endian
    tag = b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10"
    size = length.to_bytes(4, "little" if little else "big")
    header = 8 if source.is_implicit_VR else 12
    if data[start - header:start - header + 4] != tag or data[start - 4:start] != size or start + length > len(data):
        return None
    if not source.is_implicit_VR and data[start - 8:start - 6] not in (b"OB", b"OW"):
        return None
    return PixelElement(start - header, start, start + length)
