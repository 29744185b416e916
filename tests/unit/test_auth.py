"""Authentication modes and the presigned-upload service, with in-memory stand-ins."""
import pytest

from cxr_core.auth import Authenticator, Client, hash_key, new_api_key
from cxr_core.domain import ServiceError
from cxr_core.services.uploads import UploadSettings, create_upload, taken_upload


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
        assert raised.value.status == 401 and raised.value.code == "UNAUTHORIZED"


def test_non_operators_are_refused_ops_routes():
    with pytest.raises(ServiceError) as raised:
        Client("hospital-a").require_operator()
    assert raised.value.status == 403
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

    def presign_put(self, key, content_type, seconds):
        return f"http://s3.local/{key}?ttl={seconds}", {"Content-Type": content_type, "x-amz-meta-signed": "1"}

    def size(self, key):
        return len(self.objects[key]) if key in self.objects else None

    def get(self, key):
        return self.objects[key]

    def delete(self, key):
        self.objects.pop(key, None)


def test_presigned_upload_is_scoped_to_its_client_and_size_checked():
    bucket, settings = Bucket(), UploadSettings(url_seconds=600, max_bytes=10)
    grant = create_upload(bucket, "hospital-a", "application/dicom", settings)
    assert grant["method"] == "PUT"
    assert grant["headers"] == {"Content-Type": "application/dicom", "x-amz-meta-signed": "1"}  # what was signed
    key = f"uploads/hospital-a/{grant['upload_id']}"
    assert key in grant["url"]
    def take(client: str, upload_id) -> bytes:
        with taken_upload(bucket, client, upload_id, settings) as upload:
            return upload.data

    with pytest.raises(ServiceError) as missing:
        take("hospital-a", grant["upload_id"])
    assert missing.value.status == 400
    bucket.objects[key] = b"DICM-bytes"
    with pytest.raises(ServiceError):  # another client cannot use it, nor delete it
        take("hospital-b", grant["upload_id"])
    assert take("hospital-a", grant["upload_id"]) == b"DICM-bytes" and key not in bucket.objects  # used once
    bucket.objects[key] = b"x" * 11
    with pytest.raises(ServiceError) as large:
        take("hospital-a", grant["upload_id"])
    assert large.value.status == 413 and key not in bucket.objects
    for bad in ("../../etc/passwd", None, 7):
        with pytest.raises(ServiceError) as refused:
            take("hospital-a", bad)
        assert refused.value.status == 400


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
            codes.append(error.status)
    assert codes == [401, 401, 401, 429, 429, 429] and len(looked_up) == 3
    assert auth.client({"x-api-key": "k1"}, {"http": {"sourceIp": "198.51.100.1"}}).client_id == "hospital-a"


def test_the_key_cache_keeps_a_bounded_number_of_keys(monkeypatch):
    from cxr_core.auth import ApiKeyStore
    from cxr_core.records import ApiKeyRecord

    def missing(digest):
        raise ApiKeyRecord.DoesNotExist()

    monkeypatch.setattr(ApiKeyRecord, "get", missing)
    store = ApiKeyStore(cache_seconds=60, max_entries=50)
    for attempt in range(500):
        assert store.client_for(f"unknown-{attempt}") is None
    assert len(store._cache) == 50


def test_surrounding_whitespace_in_a_key_is_ignored_as_api_gateway_trims_it():
    auth = Authenticator("api_key", KeyTable({"k1": Client("hospital-a")}))
    assert auth.client({"x-api-key": " k1\t "}, {}).client_id == "hospital-a"
