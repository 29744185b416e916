"""SQS-triggered infer Lambda: one batched forward pass per event; failed records reported back to SQS."""
from aws_lambda_powertools import Logger, Metrics

from cxr_core.bootstrap import runtime
from cxr_core.services.infer import InboundMessage, process_batch
from cxr_core.telemetry import record_batch

logger = Logger()
metrics = Metrics()


def to_inbound(record: dict) -> InboundMessage:
    attributes = record.get("attributes", {})
    sent = attributes.get("SentTimestamp")
    return InboundMessage(message_id=record["messageId"], body=record["body"],
                          receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                          sent_at_epoch_ms=float(sent) if sent else None)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    report = process_batch([to_inbound(record) for record in event.get("Records", [])], runtime().infer_deps())
    record_batch(metrics, report)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failed]}
