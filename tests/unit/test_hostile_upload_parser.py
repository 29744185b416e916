"""Property tests (hypothesis) for cxr_core.request_body: multipart round-trips, and garbage only ever gives a ServiceError."""
from __future__ import annotations

import base64
import os

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cxr_core.domain import ServiceError
from cxr_core.http import status_of
from cxr_core.request_body import body_bytes, parse_upload

FUZZ_EXAMPLES = int(os.environ.get("CXR_FUZZ_EXAMPLES", "0"))  # 0: the reproducible (derandomized) default run
PROPERTY = settings(max_examples=FUZZ_EXAMPLES or 300, deadline=None if FUZZ_EXAMPLES else 2000,
                    derandomize=not FUZZ_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
# RFC 2046 bchars; a boundary of 1-70 of them that does not end in a space
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
boundaries = st.text(alphabet=BCHARS, min_size=1, max_size=70).filter(lambda b: not b.endswith(" "))
field_names = st.text(alphabet=st.characters(codec="ascii", exclude_characters='"\\\r\n\x00'), min_size=1,
                      max_size=20).filter(lambda name: name.lower() != "image")
filenames = st.none() | st.text(alphabet=st.characters(codec="ascii", min_codepoint=32, exclude_characters='"\\'),
                                min_size=1, max_size=30)


def part(boundary: str, name: str, content: bytes, filename: str | None = None,
         content_type: str | None = "application/octet-stream") -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = disposition + (f"\r\nContent-Type: {content_type}" if content_type else "")
    return f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"


def body(boundary: str, parts: list[bytes], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    return preamble + b"".join(parts) + f"--{boundary}--\r\n".encode() + epilogue


@PROPERTY
@given(boundary=boundaries, image=st.binary(min_size=1, max_size=2048), filename=filenames,
       others_before=st.lists(st.tuples(field_names, st.binary(max_size=64)), max_size=3),
       others_after=st.lists(st.tuples(field_names, st.binary(max_size=64)), max_size=3),
       preamble=st.binary(max_size=32), epilogue=st.binary(max_size=32), header_case=st.booleans())
@example(boundary="b", image=b"\r\n\r\n--\r\n", filename=None, others_before=[], others_after=[],
         preamble=b"", epilogue=b"", header_case=False)
def test_multipart_image_round_trips_byte_for_byte(boundary, image, filename, others_before, others_after,
                                                    preamble, epilogue, header_case):
    delimiter = f"--{boundary}".encode()
    # a client picks a boundary that occurs nowhere in its payload: only such bodies are well-formed
    assume(all(delimiter not in chunk for chunk in [image, preamble, epilogue, *(c for _, c in others_before),
                                                    *(c for _, c in others_after)]))
    assume(filename is None or boundary not in filename)
    parts = [part(boundary, name, content) for name, content in others_before]
    parts.append(part(boundary, "image", image, filename, "image/png"))
    parts += [part(boundary, name, content) for name, content in others_after]
    media = "Multipart/Form-Data" if header_case else "multipart/form-data"
    upload = parse_upload(f'{media}; boundary="{boundary}"', body(boundary, parts, preamble, epilogue), 1 << 20)
    assert upload.data == image
    assert upload.filename == filename


@PROPERTY
@given(boundary=boundaries, image=st.binary(min_size=1, max_size=512), limit=st.integers(1, 600))
def test_multipart_limit_is_exact(boundary, image, limit):
    assume(f"--{boundary}".encode() not in image)
    data = body(boundary, [part(boundary, "image", image)])
    try:
        upload = parse_upload(f'multipart/form-data; boundary="{boundary}"', data, limit)
    except ServiceError as error:
        assert status_of(error) == 413 and len(image) > limit
    else:
        assert upload.data == image and len(image) <= limit


@PROPERTY
@given(content_type=st.none() | st.text(max_size=80) | st.sampled_from(
           ["multipart/form-data", "multipart/form-data; boundary=x", 'multipart/form-data; boundary=""',
            "image/png", "application/dicom", "multipart/form-data; boundary=--", "text/plain; charset=utf-8"]),
       data=st.binary(max_size=4096) | st.builds(lambda prefix, rest: prefix + rest,
                                                  st.sampled_from([b"--x\r\n", b"--x--", b"--\r\n\r\n", b"--x"]),
                                                  st.binary(max_size=512)),
       limit=st.integers(0, 5000))
def test_any_body_gives_an_upload_or_a_client_error(content_type, data, limit):
    try:
        upload = parse_upload(content_type, data, limit)
    except ServiceError as error:
        assert status_of(error) in (400, 413) and error.code and error.message
    else:
        assert upload.data and len(upload.data) <= limit


@PROPERTY
@given(text=st.text(max_size=600), is_base64=st.booleans())
def test_body_bytes_decodes_or_answers_400(text, is_base64):
    try:
        data = body_bytes(text, is_base64)
    except ServiceError as error:
        assert is_base64 and status_of(error) == 400
    else:
        assert isinstance(data, bytes)


@PROPERTY
@given(payload=st.binary(max_size=2048))
def test_base64_body_round_trips(payload):
    assert body_bytes(base64.b64encode(payload).decode(), True) == payload
