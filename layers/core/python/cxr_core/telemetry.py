"""EMF metrics of one infer batch, shared by the Lambda handler and the EC2 worker."""
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cxr_core.services.infer import BatchReport


def record_batch(metrics: Metrics, report: BatchReport) -> None:
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=report.batch_size)
    metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=len(report.completed_jobs))
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=len(report.failed_jobs))
    metrics.add_metric(name="JobsUnsettled", unit=MetricUnit.Count, value=len(report.unsettled_jobs))
    metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=len(report.failed))
    if report.batch_size:
        metrics.add_metric(name="ForwardPassMs", unit=MetricUnit.Milliseconds, value=report.forward_ms)
    for value in report.queue_wait_ms:
        metrics.add_metric(name="QueueWaitMs", unit=MetricUnit.Milliseconds, value=value)
    for value in report.end_to_end_ms:
        metrics.add_metric(name="EndToEndMs", unit=MetricUnit.Milliseconds, value=value)
