"""Large uploads (big DICOMs) past API Gateway's body limits: a presigned S3 PUT, then a job that names it."""
from __future__ import annotations

import logging
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

from cxr_core.domain import Upload, bad_request, iso, no_image, too_large, utc_now
from cxr_core.ports import ImageStore

logger = logging.getLogger(__name__)

UPLOAD_MEDIA_TYPES = ("application/dicom", "image/png", "image/jpeg", "application/octet-stream")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class UploadSettings:
    url_seconds: int
    max_bytes: int


def _key(client_id: str, upload_id: str) -> str:
    return f"uploads/{client_id}/{upload_id}"


def create_upload(images: ImageStore, client_id: str, content_type: str | None, settings: UploadSettings) -> dict:
    content_type = content_type or "application/octet-stream"
    if content_type not in UPLOAD_MEDIA_TYPES:
        raise bad_request(f"content_type must be one of {', '.join(UPLOAD_MEDIA_TYPES)}")
    upload_id = uuid.uuid4().hex
    url, headers = images.presign_put(_key(client_id, upload_id), content_type, settings.url_seconds)
    return {"upload_id": upload_id, "method": "PUT", "url": url, "headers": headers,
            "expires_at": iso(utc_now() + timedelta(seconds=settings.url_seconds)), "max_bytes": settings.max_bytes}


@contextmanager
def taken_upload(images: ImageStore, client_id: str, upload_id: object, settings: UploadSettings) -> Iterator[Upload]:
    """The uploaded bytes, validated later exactly like an inline upload; only the uploader may use them, once.
    The object is deleted on the way out whatever happens inside (a refused upload may carry PHI too)."""
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
        raise bad_request("upload_id must be the id returned by POST /v1/uploads")
    key = _key(client_id, upload_id)
    try:
        size = images.size(key)
        if size is None:
            raise bad_request(f"upload {upload_id} not found: PUT the image to its URL first (or it expired)")
        if size == 0:
            raise no_image(f"upload {upload_id} is empty")
        if size > settings.max_bytes:
            raise too_large(settings.max_bytes)
        yield Upload(data=images.get(key), content_type=None, filename=upload_id)
    finally:
        try:
            images.delete(key)
        except Exception:  # the answer stands; the bucket's lifecycle rule removes it within a day
            logger.exception("could not delete upload %s", upload_id)
