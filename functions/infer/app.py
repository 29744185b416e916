"""Infer Lambda: SQS batches (one forward pass, failed records reported back) and the scheduled recovery pass."""
import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cxr_core.bootstrap import runtime
from cxr_core.services.infer import process_batch
from cxr_core.sqs_consumer import defer, inbound_message
from cxr_core.telemetry import record_batch

logger = Logger()
metrics = Metrics()


def is_schedule(event: dict) -> bool:
    return event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events"


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    rt = runtime()
    if is_schedule(event):  # the recovery pass, on an EventBridge schedule
        recovered = rt.recover()
        metrics.add_metric(name="JobsRecovered", unit=MetricUnit.Count, value=len(recovered.requeued))
        return {"requeued": recovered.requeued, "failed": recovered.failed}
    records = event.get("Records", [])
    # the event source mapping received these at most a batching window (+1 s) before this invocation
    received_at = time.time() - rt.settings.infer_batch_window_seconds - 1
    report = process_batch([inbound_message(record, received_at) for record in records], rt.infer_deps())
    record_batch(metrics, report)
    try:  # failed records come back after retry_after, not the whole visibility timeout
        receipts = {r["messageId"]: r["receiptHandle"] for r in records if r.get("receiptHandle")}
        defer(rt.sqs, rt.settings.queue_url, receipts, report.retry_after)
    except Exception:  # then they come back after the visibility timeout, as they would anyway
        logger.exception("could not shorten the visibility of failed records")
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failed]}
