"""cxr_model's image check as the submit service needs it: the model's typed image errors become domain error kinds
here, and nowhere else."""
from __future__ import annotations

from cxr_model import UNDECODABLE_IMAGE, UNSUPPORTED_MEDIA_TYPE, ImageError, ImageInfo, check_image

from cxr_core.domain import ServiceError, undecodable, unsupported_media

_AS_DOMAIN_ERROR = {UNSUPPORTED_MEDIA_TYPE: unsupported_media, UNDECODABLE_IMAGE: undecodable}


def as_domain_error(error: ImageError) -> ServiceError:
    return _AS_DOMAIN_ERROR[error.code](error.message or "image could not be decoded")


def domain_image_check(data: bytes) -> ImageInfo:
    """The image's format and size, or ServiceError UNSUPPORTED_MEDIA / UNDECODABLE."""
    try:
        return check_image(data)
    except ImageError as error:
        raise as_domain_error(error) from error
