"""Large uploads (big DICOMs) past API Gateway's body limits: a presigned S3 PUT, then a job that names it.

The URL signs the size the client declares (S3 refuses a body of another length) and, when declared, the SHA-256
(S3 refuses other bytes); an upload_id makes one job at most, ever: a second claim is a 409, whatever was PUT since.
"""
from __future__ import annotations

import base64
import logging
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

from cxr_core.domain import ErrorKind, ServiceError, Upload, bad_request, iso, no_image, too_large, utc_now
from cxr_core.ports import ImageStore, RateCounter

logger = logging.getLogger(__name__)

UPLOAD_MEDIA_TYPES = ("application/dicom", "image/png", "image/jpeg", "application/octet-stream")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CLAIM_KEEP = timedelta(days=1)  # a claim marker outlives its URL by this much (then no PUT can reach the key)


@dataclass
class UploadSettings:
    url_seconds: int
    max_bytes: int


def _key(client_id: str, upload_id: str) -> str:
    return f"uploads/{client_id}/{upload_id}"


def create_upload(images: ImageStore, client_id: str, request: dict, settings: UploadSettings) -> dict:
    """request: {"content_type", "size" (required: the exact byte count to PUT), "sha256" (optional, hex)}."""
    content_type = request.get("content_type") or "application/octet-stream"
    if content_type not in UPLOAD_MEDIA_TYPES:
        raise bad_request(f"content_type must be one of {', '.join(UPLOAD_MEDIA_TYPES)}")
    size = request.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise bad_request("size is required: the exact number of bytes you will PUT (signed into the URL)")
    if size > settings.max_bytes:
        raise too_large(settings.max_bytes)
    sha256 = request.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256)):
        raise bad_request("sha256 must be the image's SHA-256 in 64 lower-case hex digits")
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode() if sha256 else None
    upload_id = uuid.uuid4().hex
    url, headers = images.presign_put(_key(client_id, upload_id), content_type, settings.url_seconds, size, checksum)
    return {"upload_id": upload_id, "method": "PUT", "url": url, "headers": headers, "size": size, "sha256": sha256,
            "expires_at": iso(utc_now() + timedelta(seconds=settings.url_seconds)), "max_bytes": settings.max_bytes}


@contextmanager
def taken_upload(images: ImageStore, claims: RateCounter, client_id: str, upload_id: object,
                 settings: UploadSettings) -> Iterator[Upload]:
    """The uploaded bytes, validated later exactly like an inline upload; only the uploader may use them, once
    ever (a conditional write of a claim marker: a PUT after the claim makes no second job). The object is deleted
    on the way out whatever happens inside (a refused upload may carry PHI too)."""
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
        raise bad_request("upload_id must be the id returned by POST /v1/uploads")
    key = _key(client_id, upload_id)
    try:
        stored = images.head(key)
        if stored is None:
            raise bad_request(f"upload {upload_id} not found: PUT the image to its URL first (or it expired)")
        expires = utc_now() + timedelta(seconds=settings.url_seconds) + CLAIM_KEEP
        if not claims.reserve(f"upload-claim#{client_id}#{upload_id}", 1, 1, expires):
            raise ServiceError(ErrorKind.CONFLICT, "UPLOAD_ALREADY_USED",
                               f"upload {upload_id} was claimed already: one upload makes one job; "
                               f"ask POST /v1/uploads for a new one")
        if stored.size == 0:
            raise no_image(f"upload {upload_id} is empty")
        if stored.size > settings.max_bytes:
            raise too_large(settings.max_bytes)
        # with the client's SHA-256 (cxr sends it) S3 refused any other bytes at the PUT: its checksum is the digest
        # (its URL signs that checksum and the length: a second PUT to it can only write the same bytes)
        data = images.get(key, verify_checksum=stored.sha256 is None)
        yield Upload(data=data, content_type=None, filename=upload_id, sha256=stored.sha256)
    finally:
        try:
            images.delete(key)
        except Exception:  # the answer stands; the bucket's lifecycle rule removes it within a day
            logger.exception("could not delete upload %s", upload_id)
