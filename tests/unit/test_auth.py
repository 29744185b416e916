"""Authentication modes and the presigned-upload service, with in-memory stand-ins."""
import pytest

from cxr_core.auth import Authenticator, Client, hash_key, new_api_key
from cxr_core.domain import ServiceError
from cxr_core.http import status_of
from cxr_core.services.presigned_uploads import UploadSettings, create_upload, taken_upload
from cxr_core.ports import StoredObject
from tests.fakes import InMemoryApiKeyStore, InMemoryRateCounter


class KeyTable:
    def __init__(self, keys):
        self.keys = {hash_key(k): c for k, c in keys.items()}

    def client_for(self, api_key):
        return self.keys.get(hash_key(api_key))


def test_api_key_mode_maps_keys_to_clients_and_rejects_the_rest():
    auth = Authenticator("api_key", KeyTable({"k1": Client("hospital-a"), "k2": Client("ops", operator=True)}))
    assert auth.client({"x-api-key": "k1"}, {}).client_id == "hospital-a"
    assert auth.client({"x-api-key": "k2"}, {}).operator
    for headers in ({}, {"x-api-key": "wrong"}):
        with pytest.raises(ServiceError) as raised:
            auth.client(headers, {})
        assert status_of(raised.value) == 401 and raised.value.code == "UNAUTHORIZED"


def test_non_operators_are_refused_ops_routes():
    with pytest.raises(ServiceError) as raised:
        Client("hospital-a").require_operator()
    assert status_of(raised.value) == 403
    Client("ops", operator=True).require_operator()


def test_jwt_mode_trusts_the_gateway_validated_claims():
    auth = Authenticator("jwt", KeyTable({}))
    context = {"authorizer": {"jwt": {"claims": {"sub": "user-7"}, "scopes": ["cxr/ops"]}}}
    client = auth.client({}, context)
    assert client.client_id == "user-7" and client.operator
    with pytest.raises(ServiceError):
        auth.client({"x-api-key": "anything"}, {})


def test_the_gateways_iam_authorizer_makes_an_operator():
    auth = Authenticator("api_key", KeyTable({}))
    context = {"authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:role/cxr-ops", "callerId": "AROA1"}}}
    client = auth.client({}, context)
    assert client.operator and client.client_id.endswith("role/cxr-ops")


def test_generated_keys_are_long_random_and_stored_only_hashed():
    a, b = new_api_key(), new_api_key()
    assert a != b and len(a) > 40
    assert hash_key(a) != a and len(hash_key(a)) == 64


class Bucket:
    def __init__(self):
        self.objects = {}
        self.signed = []

    def presign_put(self, key, content_type, seconds, size, checksum_sha256=None):
        self.signed.append((key, size, checksum_sha256))
        return f"http://s3.local/{key}?ttl={seconds}", {"Content-Type": content_type, "x-amz-meta-signed": "1"}

    def head(self, key):
        return StoredObject(len(self.objects[key])) if key in self.objects else None

    def get(self, key, verify_checksum=True):
        return self.objects[key]

    def delete(self, key):
        self.objects.pop(key, None)


def test_presigned_upload_is_scoped_to_its_client_and_size_checked():
    bucket, claims, settings = Bucket(), InMemoryRateCounter(), UploadSettings(url_seconds=600, max_bytes=10)
    grant = create_upload(bucket, "hospital-a", {"content_type": "application/dicom", "size": 10}, settings)
    assert grant["method"] == "PUT"
    assert grant["headers"] == {"Content-Type": "application/dicom", "x-amz-meta-signed": "1"}  # what was signed
    key = f"uploads/hospital-a/{grant['upload_id']}"
    assert key in grant["url"] and bucket.signed[-1] == (key, 10, None)

    def take(client: str, upload_id) -> bytes:
        with taken_upload(bucket, claims, client, upload_id, settings) as upload:
            return upload.data

    with pytest.raises(ServiceError) as missing:
        take("hospital-a", grant["upload_id"])
    assert status_of(missing.value) == 400
    bucket.objects[key] = b"DICM-bytes"
    with pytest.raises(ServiceError):  # another client cannot use it, nor delete it
        take("hospital-b", grant["upload_id"])
    assert take("hospital-a", grant["upload_id"]) == b"DICM-bytes" and key not in bucket.objects  # used once
    bucket.objects[key] = b"swapped"  # a second PUT while the URL lives: no second job, ever
    with pytest.raises(ServiceError) as again:
        take("hospital-a", grant["upload_id"])
    assert status_of(again.value) == 409 and again.value.code == "UPLOAD_ALREADY_USED" and key not in bucket.objects
    other = create_upload(bucket, "hospital-a", {"content_type": "application/dicom", "size": 10}, settings)
    bucket.objects[f"uploads/hospital-a/{other['upload_id']}"] = b"x" * 11
    with pytest.raises(ServiceError) as large:
        take("hospital-a", other["upload_id"])
    assert status_of(large.value) == 413
    for bad in ("../../etc/passwd", None, 7):
        with pytest.raises(ServiceError) as refused:
            take("hospital-a", bad)
        assert status_of(refused.value) == 400


def test_an_upload_declares_its_size_and_may_declare_its_sha256_both_signed():
    bucket, settings = Bucket(), UploadSettings(url_seconds=600, max_bytes=100)
    sha = "ab" * 32
    grant = create_upload(bucket, "c", {"content_type": "image/png", "size": 42, "sha256": sha}, settings)
    assert bucket.signed[-1][1:] == (42, "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=") and grant["sha256"] == sha
    for request, status in [({"content_type": "image/png"}, 400), ({"size": "42"}, 400), ({"size": True}, 400),
                            ({"size": 0}, 400), ({"size": 101}, 413), ({"size": 5, "sha256": "AB" * 32}, 400),
                            ({"size": 5, "sha256": "zz"}, 400)]:
        with pytest.raises(ServiceError) as refused:
            create_upload(bucket, "c", request, settings)
        assert status_of(refused.value) == status, request


def test_unauthenticated_failures_are_limited_per_source_before_any_key_lookup():
    from cxr_core.auth import FailureLimiter

    table = KeyTable({"k1": Client("hospital-a")})
    looked_up = []
    table.client_for = lambda key, lookup=table.client_for: looked_up.append(key) or lookup(key)
    auth = Authenticator("api_key", table, FailureLimiter(3))
    probe = {"http": {"sourceIp": "203.0.113.9"}}
    codes = []
    for attempt in range(6):
        try:
            auth.client({"x-api-key": f"guess-{attempt}"}, probe)
        except ServiceError as error:
            codes.append(status_of(error))
    assert codes == [401, 401, 401, 429, 429, 429] and len(looked_up) == 3
    assert auth.client({"x-api-key": "k1"}, {"http": {"sourceIp": "198.51.100.1"}}).client_id == "hospital-a"


def test_the_key_cache_keeps_a_bounded_number_of_keys():
    from cxr_core.auth import ApiKeys

    keys = ApiKeys(InMemoryApiKeyStore(), cache_seconds=60, max_entries=50)
    for attempt in range(500):
        assert keys.client_for(f"unknown-{attempt}") is None
    assert len(keys._cache) == 50


def test_a_key_is_found_by_its_hash_cached_and_refused_once_revoked_and_the_cache_expired():
    from cxr_core.auth import ApiKeys

    store = InMemoryApiKeyStore()
    keys = ApiKeys(store, cache_seconds=60)
    key = keys.create("hospital-a", label="pacs")
    assert key not in str(store.keys) and hash_key(key) in store.keys  # only the hash is stored
    assert keys.client_for(key) == Client("hospital-a") and keys.client_for(key) == Client("hospital-a")
    assert store.finds == 1  # the second lookup came from the cache
    assert keys.revoke(key) and not keys.revoke("cxr_no_such_key")
    assert keys.client_for(key) == Client("hospital-a")  # within cache_seconds
    assert ApiKeys(store, cache_seconds=0).client_for(key) is None
    assert [entry["client_id"] for entry in keys.list()] == ["hospital-a"] and keys.list()[0]["revoked_at"]


def test_surrounding_whitespace_in_a_key_is_ignored_as_api_gateway_trims_it():
    auth = Authenticator("api_key", KeyTable({"k1": Client("hospital-a")}))
    assert auth.client({"x-api-key": " k1\t "}, {}).client_id == "hospital-a"
