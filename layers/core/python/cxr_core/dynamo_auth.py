"""ApiKeyStore and RateCounter on DynamoDB through pynamodb: a revocation and a reservation are conditional writes."""
from __future__ import annotations

from datetime import datetime, timezone

from pynamodb.exceptions import UpdateError

from cxr_core.conditions import is_condition_failed
from cxr_core.ports import StoredKey
from cxr_core.records import ApiKeyRecord, RateLimitRecord


def _stored(record: ApiKeyRecord) -> StoredKey:
    return StoredKey(record.key_hash, client_id=record.client_id, role=record.role, created_at=record.created_at,
                     label=record.label, revoked_at=record.revoked_at)


class DynamoApiKeyStore:
    def find(self, key_hash: str) -> StoredKey | None:
        try:
            return _stored(ApiKeyRecord.get(key_hash))
        except ApiKeyRecord.DoesNotExist:
            return None

    def add(self, key: StoredKey) -> None:
        ApiKeyRecord(key.key_hash, client_id=key.client_id, role=key.role, label=key.label,
                     created_at=key.created_at, revoked_at=key.revoked_at).save()

    def revoke(self, key_hash: str, moment: str) -> bool:
        try:
            ApiKeyRecord(key_hash).update(actions=[ApiKeyRecord.revoked_at.set(moment)],
                                          condition=ApiKeyRecord.key_hash.exists())
            return True
        except UpdateError as error:
            if is_condition_failed(error):
                return False  # no such key
            raise

    def all(self) -> list[StoredKey]:
        return [_stored(record) for record in ApiKeyRecord.scan()]


class DynamoLeases:
    """Leases as RateLimitsTable items `<key>#<slot>` whose `hits` is the epoch second the lease runs out."""

    def acquire(self, key: str, slots: int, now: float, until: float) -> str | None:
        for slot in range(slots):
            token = f"{key}#{slot}"
            try:
                RateLimitRecord(token).update(
                    actions=[RateLimitRecord.hits.set(until), RateLimitRecord.expires_at.set(
                        datetime.fromtimestamp(until + 3600, timezone.utc))],
                    condition=RateLimitRecord.hits.does_not_exist() | (RateLimitRecord.hits < now))
                return token
            except UpdateError as error:
                if not is_condition_failed(error):
                    raise
        return None

    def release(self, token: str, until: float) -> None:
        try:
            RateLimitRecord(token).update(actions=[RateLimitRecord.hits.set(0)],
                                          condition=RateLimitRecord.hits == until)
        except UpdateError as error:
            if not is_condition_failed(error):  # taken over after it ran out: not ours to free
                raise


class DynamoRateCounter:
    def reserve(self, window_key: str, count: int, limit: int, expires_at: datetime) -> bool:
        try:
            RateLimitRecord(window_key).update(
                actions=[RateLimitRecord.hits.add(count), RateLimitRecord.expires_at.set(expires_at)],
                condition=RateLimitRecord.hits.does_not_exist() | (RateLimitRecord.hits <= limit - count))
            return True
        except UpdateError as error:
            if is_condition_failed(error):
                return False
            raise
