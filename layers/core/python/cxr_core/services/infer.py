"""One micro-batch: claim the jobs, fetch the images, one forward pass, write each result."""
from __future__ import annotations

import json
import logging
import math
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from cxr_core.domain import Job, JobMessage, iso, model_name_of, parse_iso, stored_image_matches, utc_now
from cxr_core.heatmaps import MODEL_INPUT_SIZE, encode_heatmaps, model_input_key
from cxr_core.overlay import encode_png
from cxr_core.ports import ClaimState, EventPublisher, ImageStore, JobStore
from cxr_core.services.notifications import notify

logger = logging.getLogger(__name__)


class Prediction(Protocol):
    output: dict
    top_label: str
    heatmaps: dict | None  # finding -> 7x7 logit map, from the same forward pass


class Predictor(Protocol):
    identity: dict
    model_id: str

    def preprocess(self, data: bytes): ...
    def predict(self, images: list) -> Sequence[Prediction]: ...
    def model_input_pixels(self, image) -> bytes | None:
        """The preprocessed image as 8-bit grey rows (MODEL_INPUT_SIZE square): what heatmaps are drawn on."""


@dataclass
class InboundMessage:
    message_id: str
    body: str
    receive_count: int = 1
    sent_at_epoch_ms: float | None = None
    received_at: float | None = None  # epoch seconds: when this delivery's visibility timeout started


@dataclass
class BatchReport:
    succeeded: list[str] = field(default_factory=list)   # message ids to acknowledge (delete)
    failed: list[str] = field(default_factory=list)      # message ids to leave for redelivery / the DLQ
    retry_after: dict[str, int] = field(default_factory=dict)  # failed ids worth retrying sooner than the timeout
    completed_jobs: list[str] = field(default_factory=list)
    failed_jobs: list[str] = field(default_factory=list)
    unsettled_jobs: list[str] = field(default_factory=list)  # their outcome could not be written (store error)
    forward_ms: float = 0.0
    batch_size: int = 0
    queue_wait_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)


@dataclass
class InferDeps:
    jobs: JobStore
    images: ImageStore
    predictor: Predictor
    executor: Executor
    max_receive_count: int
    lease_seconds: int
    events: EventPublisher | None = None
    # the predictor of the model a job names (KeyError: not served here); None: `predictor` runs every job
    predictor_for: Callable[[str], Predictor] | None = None


@dataclass
class _Work:
    job: Job
    message_ids: list[str]
    receive_count: int
    tensor: object = None
    predictor: Predictor | None = None


def _parse(messages: list[InboundMessage], report: BatchReport) -> dict[str, list[InboundMessage]]:
    by_job: dict[str, list[InboundMessage]] = {}
    now_ms = time.time() * 1000
    for message in messages:
        try:
            job_message = JobMessage.from_dict(json.loads(message.body))
        except (ValueError, KeyError, TypeError):
            logger.error("malformed message %s: it will reach the DLQ", message.message_id)
            report.failed.append(message.message_id)
            continue
        if message.sent_at_epoch_ms:
            report.queue_wait_ms.append(max(0.0, now_ms - message.sent_at_epoch_ms))
        by_job.setdefault(job_message.job_id, []).append(message)
    return by_job


def _unsettled(work: _Work, report: BatchReport, action: str) -> None:
    """The job store refused a write for another reason than a lost race (throttled, unreachable): the job stays
    IN_PROGRESS under this batch's lease and its message is left unacknowledged, so it comes back after the
    visibility timeout (or, past the last delivery, the recovery pass finishes it); the neighbours go on."""
    logger.exception("job %s: could not %s; it stays IN_PROGRESS until its lease ends and is retried",
                     work.job.job_id, action)
    report.unsettled_jobs.append(work.job.job_id)
    report.failed.extend(work.message_ids)


def _give_back(work: _Work, deps: InferDeps, token: str, reason: str, report: BatchReport) -> None:
    """Retry through the queue; on the last allowed delivery the job ends FAILED and the message goes to the DLQ."""
    final = work.receive_count >= deps.max_receive_count
    failed_now = False
    try:
        if final:
            failed_now = deps.jobs.fail_job(work.job, token, reason)
        else:
            deps.jobs.release_job(work.job, token, reason)
    except Exception:
        _unsettled(work, report, "record it FAILED" if final else "release it for a retry")
        return
    if final:
        logger.error("job %s failed for good after %d deliveries: %s", work.job.job_id, work.receive_count, reason)
        if failed_now:
            notify(deps.events, work.job)  # the message goes on to the DLQ either way: no redelivery to retry it
        report.failed_jobs.append(work.job.job_id)
    else:
        logger.warning("job %s will be retried (delivery %d): %s", work.job.job_id, work.receive_count, reason)
        for message_id in work.message_ids:
            report.retry_after[message_id] = min(60, 2 ** work.receive_count)
    report.failed.extend(work.message_ids)


class ImageMismatch(Exception):
    """The stored image is not the one recorded at submit: a retry would read the same wrong bytes."""


class UnservedModel(Exception):
    """The job names a model this worker does not serve: a retry would find the same."""


def _predictor(job: Job, deps: InferDeps) -> Predictor:
    if deps.predictor_for is None:
        return deps.predictor
    name = model_name_of(job.model_id)
    try:
        return deps.predictor_for(name)
    except KeyError:
        raise UnservedModel(f"model {name} is not served by this deployment") from None


_IMAGE_ERROR_CODES = ("UNDECODABLE_IMAGE", "UNSUPPORTED_MEDIA_TYPE")


def _permanent_failure(error: Exception) -> str | None:
    """The FAILED reason for an error every delivery would meet again (so no retry), else None. An image the decoder
    refuses (cxr_model.ImageError, typed by its code) is one: submit checks structure only, so damage that a full
    decode alone finds ends here."""
    if isinstance(error, (ImageMismatch, UnservedModel)):
        return str(error)
    if getattr(error, "code", None) in _IMAGE_ERROR_CODES:
        return f"{error.code}: {getattr(error, 'message', None) or error}"
    return None


def _load(work: _Work, deps: InferDeps) -> None:
    work.predictor = _predictor(work.job, deps)
    # the digest check finds a corrupted transfer too, so the read skips S3's own checksum; a mismatch is read again
    # with it before the job fails (a transfer error then raises and the job is retried, not failed)
    data = deps.images.get(work.job.image_key, verify_checksum=False)
    if not stored_image_matches(work.job, data):
        data = deps.images.get(work.job.image_key, verify_checksum=True)
        if not stored_image_matches(work.job, data):
            raise ImageMismatch(f"stored image {work.job.image_key} does not match the digest recorded at submit")
    work.tensor = work.predictor.preprocess(data)
    pixels = work.predictor.model_input_pixels(work.tensor)
    if pixels is not None:  # None: preprocessing ends on a GPU, whose results carry no heatmaps to draw
        # stored, not deflated: 0.05 ms (level 1: 0.8, level 6: 1.3) for 50 KB instead of 34 KB per job
        picture = encode_png(pixels, MODEL_INPUT_SIZE, MODEL_INPUT_SIZE, level=0)
        deps.images.put(model_input_key(work.job.image_key), picture, "image/png")


def _lease_seconds(messages: list[InboundMessage], visibility_seconds: int) -> int:
    """A claim's lease ends when the batch's messages become visible again, not visibility_seconds after the claim:
    a lease that outlived the visibility would make the redelivery find it live and wait for nothing."""
    received = [m.received_at for m in messages if m.received_at]
    if not received:
        return visibility_seconds
    return max(1, math.floor(visibility_seconds - (time.time() - min(received))))


def job_ids(messages: list[InboundMessage]) -> list[str]:
    """The job ids the messages name (malformed ones name none)."""
    ids = []
    for message in messages:
        try:
            ids.append(JobMessage.from_dict(json.loads(message.body)).job_id)
        except (ValueError, KeyError, TypeError):
            pass
    return ids


def process_batch(messages: list[InboundMessage], deps: InferDeps, token: str | None = None) -> BatchReport:
    """token: the claim token to use (a caller that renews the batch's leases meanwhile passes its own)."""
    report = BatchReport()
    by_job = _parse(messages, report)
    if not by_job:
        return report
    token = token or uuid.uuid4().hex
    claims = deps.jobs.claim_jobs(by_job, token, _lease_seconds(messages, deps.lease_seconds))
    work: list[_Work] = []
    for job_id, job_messages in by_job.items():
        claim = claims[job_id]
        ids = [m.message_id for m in job_messages]
        if claim.state is ClaimState.CLAIMED:
            work.append(_Work(claim.job, ids, max(m.receive_count for m in job_messages)))
            logger.info("job %s claimed (delivery %d)", job_id, work[-1].receive_count)
        elif claim.state is ClaimState.BUSY:
            # running elsewhere: look again once its lease has run out (1 s later), not a whole timeout later
            report.failed.extend(ids)
            if claim.lease_until is not None:
                for message_id in ids:
                    report.retry_after[message_id] = max(1, math.ceil(claim.lease_until - time.time()) + 1)
        elif claim.state is ClaimState.FINAL and not notify(deps.events, claim.job):
            _retry_event(ids, job_messages, report)
        else:
            # already final (a redelivery: its event may not have gone out, so it went again above; subscribers
            # dedup by event id), or no job: nothing left to do
            report.succeeded.extend(ids)
    loaded = []
    for item, future in [(item, deps.executor.submit(_load, item, deps)) for item in work]:
        try:
            future.result()
            loaded.append(item)
        except Exception as error:
            reason = _permanent_failure(error)
            if reason is None:
                logger.warning("job %s: its image could not be prepared", item.job.job_id, exc_info=True)
                _give_back(item, deps, token,
                           _public_reason(error, "the image could not be prepared for the model"), report)
                continue
            logger.error("job %s failed: %s", item.job.job_id, reason)
            if deps.jobs.fail_job(item.job, token, reason):
                notify(deps.events, item.job)
            report.failed_jobs.append(item.job.job_id)
            report.succeeded.extend(item.message_ids)
    if not loaded:
        return report
    report.batch_size = len(loaded)
    by_model: dict[int, list[_Work]] = {}
    for item in loaded:  # one forward pass per model: a batch never mixes networks
        by_model.setdefault(id(item.predictor), []).append(item)
    for group in by_model.values():
        _run_model(group, deps, token, report)
    return report


def _run_model(loaded: list[_Work], deps: InferDeps, token: str, report: BatchReport) -> None:
    predictor = loaded[0].predictor
    started = time.perf_counter()
    try:
        predictions = predictor.predict([item.tensor for item in loaded])
    except Exception:
        logger.exception("forward pass failed for %d jobs", len(loaded))
        for item in loaded:
            _give_back(item, deps, token, "inference failed", report)  # the details are in the log above
        return
    report.forward_ms += (time.perf_counter() - started) * 1000
    finished = utc_now()
    for item, prediction in zip(loaded, predictions):
        result = {"top_label": prediction.top_label, "output": prediction.output,
                  "model": predictor.identity, "created_at": iso(finished)}
        if prediction.heatmaps:
            result["heatmaps"] = encode_heatmaps(prediction.heatmaps)
        try:
            completed = deps.jobs.complete_job(item.job, token, result)
        except Exception:
            _unsettled(item, report, "write its result")
            continue
        if completed:
            logger.info("job %s completed (delivery %d)", item.job.job_id, item.receive_count)
            report.completed_jobs.append(item.job.job_id)
            report.end_to_end_ms.append((finished - parse_iso(item.job.created_at)).total_seconds() * 1000)
            if not notify(deps.events, item.job):  # durable, but unannounced: the redelivery publishes it again
                _retry_event(item.message_ids, [], report, item.receive_count)
                continue
        report.succeeded.extend(item.message_ids)


def _public_reason(error: Exception, default: str) -> str:
    """What a job shows of an error: an image error's own message, else a fixed text (exception classes and
    internals stay in the log)."""
    message = getattr(error, "message", None)
    return message if isinstance(message, str) and message else default


def _retry_event(message_ids: list[str], messages: list[InboundMessage], report: BatchReport,
                 receive_count: int | None = None) -> None:
    count = receive_count or max((m.receive_count for m in messages), default=1)
    report.failed.extend(message_ids)
    for message_id in message_ids:
        report.retry_after[message_id] = min(60, 2 ** count)
