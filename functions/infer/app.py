"""Infer Lambda: SQS batches (one forward pass, failed records reported back) and the scheduled recovery pass."""
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cxr_core.bootstrap import runtime
from cxr_core.services.infer import InboundMessage, process_batch
from cxr_core.services.recovery import recover_stuck_jobs
from cxr_core.telemetry import record_batch

logger = Logger()
metrics = Metrics()


def to_inbound(record: dict) -> InboundMessage:
    attributes = record.get("attributes", {})
    sent = attributes.get("SentTimestamp")
    return InboundMessage(message_id=record["messageId"], body=record["body"],
                          receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                          sent_at_epoch_ms=float(sent) if sent else None)


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
    report = process_batch([to_inbound(record) for record in event.get("Records", [])], runtime().infer_deps())
    record_batch(metrics, report)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failed]}
