"""ImageHolds on DynamoDB: which jobs still need a stored image, so that deleting one job never deletes an image
another job (of any client) still needs, without a race: a hold and a deletion mark exclude each other by condition.

Submit adds its job as a holder before it stores the image; a deletion removes its job, then marks the image as
being deleted only if no holder is left (and no live mark exists), deletes the object, and clears the mark. A hold
is refused while a mark is live, so no image is stored between the mark and the object's deletion; a mark left by
a deleter that died expires after IMAGE_DELETION_LEASE_MS.
"""
from __future__ import annotations

import time
from datetime import timedelta

from pynamodb.exceptions import DeleteError, UpdateError

from cxr_core.conditions import is_condition_failed
from cxr_core.domain import utc_now
from cxr_core.records import ImageHoldRecord

IMAGE_DELETION_LEASE_MS = 60_000  # a deletion mark this old is abandoned: holds may be taken again


class DynamoImageHolds:
    def __init__(self, ttl_days: int):
        self._ttl = timedelta(days=ttl_days)  # the record outlives its newest holder's job by no more than this

    def hold(self, image_key: str, job_id: str) -> bool:
        now_ms = int(time.time() * 1000)
        try:
            ImageHoldRecord(f"hold#{image_key}").update(
                actions=[ImageHoldRecord.holders.add({job_id}), ImageHoldRecord.deleting_until.remove(),
                         ImageHoldRecord.expires_at.set(utc_now() + self._ttl)],
                condition=ImageHoldRecord.deleting_until.does_not_exist() | (ImageHoldRecord.deleting_until < now_ms))
            return True
        except UpdateError as error:
            if is_condition_failed(error):
                return False  # being deleted right now
            raise

    def release(self, image_key: str, job_id: str) -> str | None:
        record = ImageHoldRecord(f"hold#{image_key}")
        record.update(actions=[ImageHoldRecord.holders.delete({job_id})])
        now_ms = int(time.time() * 1000)
        mark = now_ms + IMAGE_DELETION_LEASE_MS
        try:
            record.update(actions=[ImageHoldRecord.deleting_until.set(mark)],
                          condition=ImageHoldRecord.holders.does_not_exist() & (
                              ImageHoldRecord.deleting_until.does_not_exist()
                              | (ImageHoldRecord.deleting_until < now_ms)))
            return str(mark)
        except UpdateError as error:
            if is_condition_failed(error):
                return None  # another job still needs it, or another deletion has it in hand
            raise

    def deleted(self, image_key: str, mark: str) -> None:
        try:
            ImageHoldRecord(f"hold#{image_key}").delete(
                condition=(ImageHoldRecord.deleting_until == int(mark)) & ImageHoldRecord.holders.does_not_exist())
        except DeleteError as error:
            if not is_condition_failed(error):
                raise

