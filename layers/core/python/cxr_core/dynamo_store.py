"""JobStore on DynamoDB through pynamodb: every state transition is a conditional write."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Iterable

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from cxr_core.conditions import RACE_REASONS, cancellation_codes, is_condition_failed
from cxr_core.domain import CacheEntry, Job, JobStatus, iso, parse_iso, utc_now
from cxr_core.ports import CacheKeyTaken, Claim, ClaimState
from cxr_core.records import CacheRecord, JobRecord

PENDING, DONE = "PENDING", "DONE"
_CLAIM_ROUNDS = 3
TRANSACTION_LIMIT = 100  # items per TransactWriteItems


def _to_job(record: JobRecord) -> Job:
    return Job(
        job_id=record.job_id, status=JobStatus(record.status), image_sha256=record.image_sha256,
        image_key=record.image_key, model_id=record.model_id, created_at=record.created_at,
        updated_at=record.updated_at, started_at=record.started_at, finished_at=record.finished_at,
        attempts=int(record.attempts or 0), error=record.error, cached=bool(record.cached),
        result=record.result, client_id=record.client_id, stored_sha256=record.stored_sha256,
        cache_owner=record.cache_owner, stored_digest=record.stored_digest,
    )


class DynamoJobStore:
    def __init__(self, region: str, endpoint_url: str | None, ttl_days: int):
        """The models' tables are bound by the composition root (records.bind_tables); transactions use this
        connection, on the same region and endpoint."""
        self._connection = Connection(region=region, host=endpoint_url)
        self._ttl = timedelta(days=ttl_days)

    def _record(self, job: Job) -> JobRecord:
        return JobRecord(
            job.job_id, status=job.status.value, image_sha256=job.image_sha256, image_key=job.image_key,
            model_id=job.model_id, created_at=job.created_at, updated_at=job.updated_at,
            started_at=job.started_at, finished_at=job.finished_at, attempts=job.attempts, error=job.error,
            cached=job.cached, result=job.result, client_id=job.client_id, stored_sha256=job.stored_sha256,
            cache_owner=job.cache_owner, stored_digest=job.stored_digest,
            expires_at=parse_iso(job.created_at) + self._ttl,
        )

    def _cache_record(self, key: str, job: Job, result: dict | None) -> CacheRecord:
        return CacheRecord(key, job_id=job.job_id, state=DONE if result is not None else PENDING,
                           result=result, updated_at=iso(utc_now()), expires_at=utc_now() + self._ttl)

    def get_job(self, job_id: str) -> Job | None:
        try:
            return _to_job(JobRecord.get(job_id, consistent_read=True))
        except JobRecord.DoesNotExist:
            return None

    def get_cache(self, key: str) -> CacheEntry | None:
        try:
            record = CacheRecord.get(key, consistent_read=True)
        except CacheRecord.DoesNotExist:
            return None
        return CacheEntry(cache_key=key, job_id=record.job_id, done=record.state == DONE, result=record.result)

    def put_job(self, job: Job) -> None:
        self._record(job).save(condition=JobRecord.job_id.does_not_exist())

    def create_job(self, job: Job, stale_job_id: str | None = None, claim_cache: bool = True) -> None:
        if not claim_cache:
            self.put_job(job)
            return
        free = CacheRecord.cache_key.does_not_exist()
        if stale_job_id:
            free = free | ((CacheRecord.job_id == stale_job_id) & (CacheRecord.state == PENDING))
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(self._record(job), condition=JobRecord.job_id.does_not_exist())
                tx.save(self._cache_record(job.cache_key, job, None), condition=free)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if is_condition_failed(error) or (codes and set(codes) <= RACE_REASONS):
                raise CacheKeyTaken(job.cache_key) from error  # held, or contended: read the key again
            raise

    def claim_jobs(self, job_ids: Iterable[str], token: str, lease_seconds: int) -> dict[str, Claim]:
        """Read all jobs in one consistent batch, then claim the runnable ones in one transaction."""
        ids = list(dict.fromkeys(job_ids))
        records = {r.job_id: r for r in JobRecord.batch_get(ids, consistent_read=True)}
        claims: dict[str, Claim] = {}
        now = time.time()
        candidates = []
        for job_id in ids:
            record = records.get(job_id)
            if record is None:
                claims[job_id] = Claim(ClaimState.MISSING)
            elif JobStatus(record.status).is_final:
                claims[job_id] = Claim(ClaimState.FINAL, _to_job(record))
            elif record.status == JobStatus.IN_PROGRESS.value and (record.lease_until or 0) > now:
                claims[job_id] = Claim(ClaimState.BUSY, _to_job(record), float(record.lease_until))
            else:
                candidates.append(record)
        for start in range(0, len(candidates), TRANSACTION_LIMIT):
            chunk = candidates[start:start + TRANSACTION_LIMIT]
            for _ in range(_CLAIM_ROUNDS):
                if not chunk:
                    break
                chunk = self._claim_round(chunk, token, lease_seconds, claims)
            for record in chunk:
                claims[record.job_id] = Claim(ClaimState.BUSY, _to_job(record), now + lease_seconds)
        return claims

    def _claim_round(self, records: list[JobRecord], token: str, lease_seconds: int,
                     claims: dict[str, Claim]) -> list[JobRecord]:
        """One TransactWriteItems over all candidates; returns those worth another round."""
        now = time.time()
        moment = iso(utc_now())
        claimable = (JobRecord.status == JobStatus.QUEUED.value) | (
            (JobRecord.status == JobStatus.IN_PROGRESS.value) & (JobRecord.lease_until < now))
        try:
            with TransactWrite(connection=self._connection) as tx:
                for record in records:
                    tx.update(record, actions=[
                        JobRecord.status.set(JobStatus.IN_PROGRESS.value), JobRecord.claim_token.set(token),
                        JobRecord.lease_until.set(now + lease_seconds), JobRecord.started_at.set(moment),
                        JobRecord.updated_at.set(moment), JobRecord.attempts.add(1),
                    ], condition=claimable)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if not codes or not set(codes) <= RACE_REASONS:
                raise  # throttled, unreachable, invalid: not a lost race, so nothing may pass for BUSY
            retry = []
            for index, record in enumerate(records):
                if is_condition_failed(error, index):  # claimed a moment ago
                    claims[record.job_id] = Claim(ClaimState.BUSY, _to_job(record), now + lease_seconds)
                else:
                    retry.append(record)
            return retry
        for record in records:
            job = _to_job(record)
            job.status, job.started_at, job.updated_at = JobStatus.IN_PROGRESS, moment, moment
            job.attempts += 1
            claims[record.job_id] = Claim(ClaimState.CLAIMED, job)
        return []

    def extend_leases(self, job_ids: Iterable[str], token: str, lease_seconds: int) -> None:
        for job_id in dict.fromkeys(job_ids):
            try:
                JobRecord(job_id).update(actions=[JobRecord.lease_until.set(time.time() + lease_seconds)],
                                         condition=(JobRecord.status == JobStatus.IN_PROGRESS.value)
                                         & (JobRecord.claim_token == token))
            except UpdateError as error:
                if not is_condition_failed(error):
                    raise
                # not (or no longer) ours: nothing to keep alive

    def complete_job(self, job: Job, token: str, result: dict) -> bool:
        moment = iso(utc_now())
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(JobRecord(job.job_id), actions=[
                    JobRecord.status.set(JobStatus.COMPLETED.value), JobRecord.result.set(result),
                    JobRecord.finished_at.set(moment), JobRecord.updated_at.set(moment),
                    JobRecord.claim_token.remove(), JobRecord.lease_until.remove(), JobRecord.error.remove(),
                ], condition=(JobRecord.status == JobStatus.IN_PROGRESS.value) & (JobRecord.claim_token == token))
                tx.save(self._cache_record(job.cache_key, job, result))
        except TransactWriteError as error:
            if is_condition_failed(error):
                return False
            raise
        job.status, job.result, job.finished_at, job.updated_at = JobStatus.COMPLETED, result, moment, moment
        return True

    def release_job(self, job: Job, token: str, error: str) -> None:
        try:
            JobRecord(job.job_id).update(actions=[
                JobRecord.status.set(JobStatus.QUEUED.value), JobRecord.error.set(error),
                JobRecord.updated_at.set(iso(utc_now())), JobRecord.claim_token.remove(),
                JobRecord.lease_until.remove(),
            ], condition=(JobRecord.status == JobStatus.IN_PROGRESS.value) & (JobRecord.claim_token == token))
        except UpdateError as error:
            if not is_condition_failed(error):
                raise
            # the claim already moved on; the queue's redelivery decides what happens next

    def fail_job(self, job: Job, token: str | None, error: str) -> bool:
        # job_id.exists(): an update never re-creates a job that was deleted meanwhile
        condition = JobRecord.job_id.exists() & ~JobRecord.status.is_in(JobStatus.COMPLETED.value,
                                                                        JobStatus.FAILED.value)
        if token:
            condition = condition & (JobRecord.claim_token == token)
        moment = iso(utc_now())
        try:
            JobRecord(job.job_id).update(actions=[
                JobRecord.status.set(JobStatus.FAILED.value), JobRecord.error.set(error),
                JobRecord.finished_at.set(moment), JobRecord.updated_at.set(moment),
                JobRecord.claim_token.remove(), JobRecord.lease_until.remove(),
            ], condition=condition)
        except UpdateError as error:
            if is_condition_failed(error):
                return False  # already final, or the claim moved on
            raise
        job.status, job.error, job.finished_at, job.updated_at = JobStatus.FAILED, error, moment, moment
        try:  # free the dedup record so a later upload of the same image is tried afresh
            CacheRecord(job.cache_key).delete(condition=(CacheRecord.job_id == job.job_id) & (CacheRecord.state == PENDING))
        except DeleteError as error:
            if not is_condition_failed(error):
                raise
        return True

    def touch_queued(self, job: Job) -> bool:
        """Mark a QUEUED job as re-enqueued now, so the next recovery pass leaves it alone."""
        try:
            JobRecord(job.job_id).update(actions=[JobRecord.updated_at.set(iso(utc_now()))],
                                         condition=JobRecord.status == JobStatus.QUEUED.value)
            return True
        except UpdateError as error:
            if is_condition_failed(error):
                return False
            raise

    def reset_to_queued(self, job: Job) -> bool:
        """An IN_PROGRESS job whose lease ran out long ago (its worker died on the last delivery) goes back."""
        moment = iso(utc_now())
        try:
            JobRecord(job.job_id).update(actions=[
                JobRecord.status.set(JobStatus.QUEUED.value), JobRecord.updated_at.set(moment),
                JobRecord.claim_token.remove(), JobRecord.lease_until.remove(),
            ], condition=(JobRecord.status == JobStatus.IN_PROGRESS.value) & (JobRecord.lease_until < time.time()))
            return True
        except UpdateError as error:
            if is_condition_failed(error):
                return False
            raise

    def jobs_by_status(self, status: JobStatus, since: str, limit: int | None = None,
                       before: str | None = None) -> list[Job]:
        if since and before:
            condition = JobRecord.updated_at.between(since, before)
        elif before:
            condition = JobRecord.updated_at < before
        else:
            condition = JobRecord.updated_at >= since if since else None
        query = JobRecord.status_index.query(status.value, condition, scan_index_forward=False, limit=limit)
        return [_to_job(record) for record in query]

    def client_jobs(self, client_id: str, limit: int, start_key: dict | None = None, status: JobStatus | None = None,
                    since: str | None = None, until: str | None = None) -> tuple[list[Job], dict | None]:
        """One query on the client index (a status filter is applied by DynamoDB after the key condition)."""
        if since and until:
            window = JobRecord.created_at.between(since, until)
        elif since or until:
            window = JobRecord.created_at >= since if since else JobRecord.created_at <= until
        else:
            window = None
        query = JobRecord.client_index.query(
            client_id, window, filter_condition=JobRecord.status == status.value if status else None,
            scan_index_forward=False, limit=limit, last_evaluated_key=start_key)
        jobs = [_to_job(record) for record in query]  # pynamodb reads pages until `limit` jobs passed the filter
        return jobs, query.last_evaluated_key

    def delete_job(self, job: Job) -> bool:
        """The job first: a worker's result transaction is conditional on it, so none is written after this."""
        try:
            JobRecord(job.job_id).delete(condition=JobRecord.job_id.exists())
        except DeleteError as error:
            if is_condition_failed(error):
                return False
            raise
        try:  # only its own entry: a later job of the same image may hold the key by now
            CacheRecord(job.cache_key).delete(condition=CacheRecord.job_id == job.job_id)
        except DeleteError as error:
            if not is_condition_failed(error):
                raise
        return True
