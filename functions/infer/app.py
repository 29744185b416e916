"""Infer Lambda: SQS batches (one forward pass, failed records reported back) and the scheduled recovery pass."""
import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cxr_core.bootstrap import runtime
from cxr_core.services.infer import InboundMessage, process_batch
from cxr_core.services.recovery import recover_stuck_jobs
from cxr_core.sqs_consumer import defer
from cxr_core.telemetry import record_batch

logger = Logger()
metrics = Metrics()


def to_inbound(record: dict, received_at: float | None = None) -> InboundMessage:
    attributes = record.get("attributes", {})
    sent = attributes.get("SentTimestamp")
    return InboundMessage(message_id=record["messageId"], body=record["body"],
                          receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                          sent_at_epoch_ms=float(sent) if sent else None, received_at=received_at)


def is_schedule(event: dict) -> bool:
    return event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events"


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    if is_schedule(event):  # the recovery pass, on an EventBridge schedule
        rt = runtime()
        recovered = recover_stuck_jobs(rt.jobs, rt.queue, rt.settings.stuck_job_seconds, rt.settings.max_receive_count,
                                       events=rt.events)
        metrics.add_metric(name="JobsRecovered", unit=MetricUnit.Count, value=len(recovered.requeued))
        return {"requeued": recovered.requeued, "failed": recovered.failed}
    records = event.get("Records", [])
    rt = runtime()
    # the event source mapping received these at most a batching window (+1 s) before this invocation
    received_at = time.time() - rt.settings.infer_batch_window_seconds - 1
    report = process_batch([to_inbound(record, received_at) for record in records], rt.infer_deps())
    record_batch(metrics, report)
    try:  # failed records come back after retry_after, not the whole visibility timeout
        receipts = {r["messageId"]: r["receiptHandle"] for r in records if r.get("receiptHandle")}
        defer(rt.sqs, rt.settings.queue_url, receipts, report.retry_after)
    except Exception:  # then they come back after the visibility timeout, as they would anyway
        logger.exception("could not shorten the visibility of failed records")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failed]}
