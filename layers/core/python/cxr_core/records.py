"""pynamodb models of the service's tables; bootstrap binds their names, region and endpoint (bind_tables)."""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import (BooleanAttribute, JSONAttribute, NumberAttribute, TTLAttribute,
                                 UnicodeAttribute, UnicodeSetAttribute)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model


class StatusUpdatedIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "status-updated-index"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class ClientCreatedIndex(GlobalSecondaryIndex):
    """A client's own jobs, newest first (GET /v1/jobs): what a listing shows, never the scores."""
    class Meta:
        index_name = "client-created-index"
        projection = IncludeProjection(["status", "updated_at", "finished_at", "error", "cached"])

    client_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class JobRecord(Model):
    class Meta:
        table_name = None  # bound by bind_tables

    job_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    image_sha256 = UnicodeAttribute()
    image_key = UnicodeAttribute()
    model_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    error = UnicodeAttribute(null=True)
    cached = BooleanAttribute(default=False)
    result = JSONAttribute(null=True)
    client_id = UnicodeAttribute(null=True)
    claim_token = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    stored_sha256 = UnicodeAttribute(null=True)  # jobs from before stored_digest
    stored_digest = UnicodeAttribute(null=True)
    cache_owner = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    status_index = StatusUpdatedIndex()
    client_index = ClientCreatedIndex()


class CacheRecord(Model):
    class Meta:
        table_name = None  # bound by bind_tables

    cache_key = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute()
    state = UnicodeAttribute()  # PENDING | DONE
    result = JSONAttribute(null=True)
    updated_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


class ImageHoldRecord(Model):
    """Which jobs still need a stored image (images/<sha256>, shared by every client), on the results table under
    `hold#<image key>`: a job is added before its image is stored and removed when the job is deleted; the image is
    deleted only by whoever marks `deleting_until` while no holder is left (see services.erasure)."""
    class Meta:
        table_name = None  # bound by bind_tables

    cache_key = UnicodeAttribute(hash_key=True)
    holders = UnicodeSetAttribute(null=True)  # an empty set is no attribute at all in DynamoDB
    deleting_until = NumberAttribute(null=True)  # epoch seconds: a deletion in progress, until then
    expires_at = TTLAttribute(null=True)


class ApiKeyRecord(Model):
    """One client's API key, stored only as its SHA-256."""
    class Meta:
        table_name = None  # bound by bind_tables

    key_hash = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute()
    role = UnicodeAttribute(default="client")  # client | operator (operators may read /v1/ops/metrics and /dlq)
    label = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)


class RateLimitRecord(Model):
    """Requests of one client in one minute; expires by TTL."""
    class Meta:
        table_name = None  # bound by bind_tables

    window_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


@dataclass(frozen=True)
class TableNames:
    jobs: str
    results: str
    api_keys: str
    rate_limits: str


def bind_tables(names: TableNames, region: str, endpoint_url: str | None) -> None:
    """Point every model at its table (the composition root calls this once per process, before any access)."""
    for model, table in ((JobRecord, names.jobs), (CacheRecord, names.results), (ImageHoldRecord, names.results),
                         (ApiKeyRecord, names.api_keys), (RateLimitRecord, names.rate_limits)):
        model.Meta.table_name, model.Meta.region, model.Meta.host = table, region, endpoint_url
        model._connection = None  # a connection made before the binding named another table or endpoint
