"""What the local stack creates from template.yaml beyond tables and queues: the bucket's CORS for browser uploads."""
from __future__ import annotations

import boto3
import pytest
import requests

from cxr_local.intrinsics import StackIdentity
from cxr_local.resources import create_stack_resources
from cxr_local.template import StackTemplate
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
PAGE = "https://viewer.example.org"


@pytest.fixture(scope="module")
def created(moto_endpoint):
    """The whole template under a stage of its own, with the page's origin set as an operator would."""
    template = StackTemplate(REPO / "template.yaml", {"Stage": "extras", "CorsAllowOrigin": PAGE},
                             StackIdentity(stack_name="cxr-extras", queue_url_base=moto_endpoint))
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    original_client = session.client
    session.client = lambda service, **kw: original_client(service, endpoint_url=moto_endpoint, **kw)
    return create_stack_resources(template, session), session


def test_images_bucket_allows_the_pages_presigned_put_and_nothing_else(created, moto_endpoint):
    resources, session = created
    bucket = resources["buckets"]["ImagesBucket"]
    rules = session.client("s3").get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules == [{"ID": "presigned-browser-uploads", "AllowedOrigins": [PAGE], "AllowedMethods": ["PUT"],
                      "AllowedHeaders": ["content-type", "x-amz-server-side-encryption", "x-amz-checksum-sha256"],
                      "MaxAgeSeconds": 600}]
    preflight = {"Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "content-type,x-amz-server-side-encryption,x-amz-checksum-sha256"}
    allowed = requests.options(f"{moto_endpoint}/{bucket}/uploads/x", headers={"Origin": PAGE, **preflight}, timeout=10)
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == PAGE
    other = requests.options(f"{moto_endpoint}/{bucket}/uploads/x",
                             headers={"Origin": "https://elsewhere.example", **preflight}, timeout=10)
    assert other.status_code == 403
    presigned = session.client("s3").generate_presigned_url(  # what the browser preflights: the signed URL
        "put_object", Params={"Bucket": bucket, "Key": "uploads/x", "ContentType": "application/dicom"})
    signed = requests.options(presigned, headers={"Origin": PAGE, **preflight}, timeout=10)
    assert signed.status_code == 200 and signed.headers["Access-Control-Allow-Origin"] == PAGE


def test_without_an_origin_the_bucket_has_no_cors_rules():
    template = StackTemplate(REPO / "template.yaml", {"Stage": "local"}, StackIdentity(stack_name="cxr-local"))
    assert "CorsConfiguration" not in template.resolver.resolve(
        template.resolver.resources["ImagesBucket"]["Properties"])
