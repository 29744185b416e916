"""pynamodb models of the service's tables; bootstrap binds their names, region and endpoint (bind_tables)."""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import (BooleanAttribute, JSONAttribute, NumberAttribute, TTLAttribute,
                                 UnicodeAttribute)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


class StatusUpdatedIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "status-updated-index"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


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
    stored_sha256 = UnicodeAttribute(null=True)
    cache_owner = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    status_index = StatusUpdatedIndex()


class CacheRecord(Model):
    class Meta:
        table_name = None  # bound by bind_tables

    cache_key = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute()
    state = UnicodeAttribute()  # PENDING | DONE
    result = JSONAttribute(null=True)
    updated_at = UnicodeAttribute()
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
    for model, table in ((JobRecord, names.jobs), (CacheRecord, names.results), (ApiKeyRecord, names.api_keys),
                         (RateLimitRecord, names.rate_limits)):
        model.Meta.table_name, model.Meta.region, model.Meta.host = table, region, endpoint_url
        model._connection = None  # a connection made before the binding named another table or endpoint
