"""The image out of an HTTP request body (multipart field `image`, seed-compatible, or raw bytes)."""
from __future__ import annotations

import base64
import binascii
from email.message import Message

from cxr_core.domain import Upload, bad_request, no_image, too_large

IMAGE_FIELD = "image"
MODEL_FIELD = "model"  # optional: which served model reads the image (GET /v1/models)


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    message = Message()
    message["content-type"] = value
    params = dict((k.lower(), v) for k, v in message.get_params(header="content-type")[1:])
    return message.get_content_type(), params


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """The request body as API Gateway hands it over: base64 for binary payloads."""
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise bad_request("request body is not valid base64") from error
    return body.encode("utf-8", "surrogateescape")


def _multipart_parts(data: bytes, boundary: str):
    delimiter = b"--" + boundary.encode("latin-1")
    sections = data.split(delimiter)
    if len(sections) < 3:
        raise bad_request("malformed multipart body: boundary not found")
    for section in sections[1:-1]:
        if section.startswith(b"\r\n"):
            section = section[2:]
        head, separator, content = section.partition(b"\r\n\r\n")
        if not separator:
            raise bad_request("malformed multipart body: part without headers")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        yield headers, content


def _disposition(value: str) -> dict[str, str]:
    message = Message()
    message["content-disposition"] = value
    return {k.lower(): v for k, v in message.get_params(header="content-disposition")[1:]}


def parse_upload(content_type: str | None, data: bytes, max_bytes: int) -> Upload:
    """Raises ServiceError 400 (no image) / 413 (over the limit); the format is decided later, from the bytes."""
    if len(data) == 0:
        raise no_image()
    media_type, params = _header_params(content_type or "application/octet-stream")
    if media_type != "multipart/form-data":
        if len(data) > max_bytes:
            raise too_large(max_bytes)
        return Upload(data=data, content_type=media_type)
    boundary = params.get("boundary")
    if not boundary:
        raise bad_request("multipart/form-data without a boundary")
    images, models = [], []
    for headers, content in _multipart_parts(data, boundary):
        disposition = _disposition(headers.get("content-disposition", ""))
        if disposition.get("name") == IMAGE_FIELD:
            images.append(Upload(data=content, content_type=headers.get("content-type"),
                                 filename=disposition.get("filename")))
        elif disposition.get("name") == MODEL_FIELD:
            models.append(content.decode("utf-8", "replace").strip())
    if not images:
        raise no_image(f"multipart body has no field '{IMAGE_FIELD}'")
    if len(images) > 1:
        raise bad_request(f"multipart body has {len(images)} '{IMAGE_FIELD}' fields; send one image per job")
    image = images[0]
    if not image.data:
        raise no_image(f"multipart field '{IMAGE_FIELD}' is empty")
    if len(image.data) > max_bytes:
        raise too_large(max_bytes)
    if len(models) > 1:
        raise bad_request(f"multipart body has {len(models)} '{MODEL_FIELD}' fields; name one model")
    image.model = models[0] if models else None
    return image
