"""Typed image errors that the service maps to HTTP 415 / 422, and which decoder failures count as one."""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
UNDECODABLE_IMAGE = "UNDECODABLE_IMAGE"


class ImageError(Exception):
    """An upload that is not a supported image or cannot be turned into a model input."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def unsupported(cls, message: str) -> "ImageError":
        return cls(UNSUPPORTED_MEDIA_TYPE, message)

    @classmethod
    def undecodable(cls, message: str, cause: BaseException | None = None) -> "ImageError":
        """cause: the decoder's own exception, logged (its class says which decoder failed) but never put in the
        message, which clients see."""
        if cause is not None:
            logger.info("%s: %s: %s", message, type(cause).__name__, cause)
        return cls(UNDECODABLE_IMAGE, message)


def reraise_unless_decoder_failure(exc: BaseException) -> None:
    """pylibjpeg-rle (Rust) reports a corrupt frame as pyo3's PanicException, which is not an Exception."""
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc
