"""Native PixelData copied byte for byte from the upload into a rewritten header, instead of decoded and re-written."""
from __future__ import annotations

PIXEL_DATA = 0x7FE00010  # the last tag kept: every other one sorts before it
DEFER_BYTES = 65536  # values this large are left unread by dcmread(defer_size=...)
_DEFLATED = "1.2.840.10008.1.2.1.99"


def pixel_element_bytes(data: bytes, source) -> memoryview | None:
    """The PixelData element as the upload holds it (tag, VR, length, value), where pydicom left its value unread in
    the upload (native pixels of defined length, not deflated; read with defer_size=DEFER_BYTES), else None: then
    it is written from its value."""
    span = pixel_element_span(data, source)
    return None if span is None else memoryview(data)[span[0]:span[1]]


def pixel_element_span(data: bytes, source) -> tuple[int, int] | None:
    """Where pixel_element_bytes' element lies in `data`: (first byte, end)."""
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
    header = _header_size(source)
    if data[start - header:start - header + 4] != tag or data[start - 4:start] != size or start + length > len(data):
        return None
    if not source.is_implicit_VR and data[start - 8:start - 6] not in (b"OB", b"OW"):
        return None
    return start - header, start + length


def cut_to(element: memoryview, source, needed: int) -> bytes:
    """The spliced element with its value cut to the first `needed` bytes (a zero byte added to an odd count, as
    pydicom pads): the same tag and VR, the new length."""
    header = _header_size(source)
    length = (needed + needed % 2).to_bytes(4, "little" if source.is_little_endian else "big")
    return bytes(element[:header - 4]) + length + bytes(element[header:header + needed]) + b"\0" * (needed % 2)


def _header_size(source) -> int:
    return 8 if source.is_implicit_VR else 12
