"""Several models: the served set from settings, the choice per request, GET /v1/models, the multipart field."""
from __future__ import annotations

import pytest

from cxr_core.config import _served
from cxr_core.domain import ErrorKind, ServiceError
from cxr_core.services.models import choose_model, models_view
from cxr_core.request_body import parse_upload

SERVED = {"all": {"name": "all", "model_id": "all@1/exact", "findings": ["A", "B"], "weights": "real"},
          "chex": {"name": "chex", "model_id": "chex@2/exact", "findings": ["A"], "weights": "provided",
                   "warning": "unverified"}}


def test_the_served_set_puts_the_default_first_once():
    assert _served("all", "") == ("all",)
    assert _served("all", " chex, nih ,all,,chex") == ("all", "chex", "nih")


def test_choice_by_name_the_default_otherwise_and_400_naming_the_served_set():
    assert choose_model(SERVED, "all")["model_id"] == "all@1/exact"
    assert choose_model(SERVED, "all", None, "chex")["model_id"] == "chex@2/exact"
    assert choose_model(SERVED, "all", "chex", "chex")["name"] == "chex"
    for requested in (("dragons",), ("all", "chex")):
        with pytest.raises(ServiceError) as refused:
            choose_model(SERVED, "all", *requested)
        assert refused.value.kind is ErrorKind.INVALID
    with pytest.raises(ServiceError) as unknown:
        choose_model(SERVED, "all", "dragons")
    assert "all, chex" in unknown.value.message


def test_the_listing_says_what_each_model_reports():
    listing = models_view(SERVED, "all")
    assert listing["default"] == "all" and [m["name"] for m in listing["models"]] == ["all", "chex"]
    assert listing["models"][1] == {"name": "chex", "default": False, "findings": ["A"], "weights": "provided",
                                    "weights_sha256": None, "input_size": None, "model_id": "chex@2/exact",
                                    "warning": "unverified"}


def test_the_multipart_model_field_is_read_and_one_only():
    def body(*fields: tuple[str, bytes]) -> bytes:
        parts = [b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name.encode(), value)
                 for name, value in fields]
        return b"".join(parts) + b"--B--\r\n"
    upload = parse_upload("multipart/form-data; boundary=B", body(("image", b"PNG"), ("model", b"chex")), 100)
    assert upload.data == b"PNG" and upload.model == "chex"
    assert parse_upload("multipart/form-data; boundary=B", body(("image", b"PNG")), 100).model is None
    with pytest.raises(ServiceError):
        parse_upload("multipart/form-data; boundary=B", body(("image", b"PNG"), ("model", b"a"), ("model", b"b")), 100)
