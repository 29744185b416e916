"""POST /v1/jobs: parse the upload, submit it, answer 201 (queued) or 200 (cached or already running)."""
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.metrics import MetricUnit

from cxr_core.bootstrap import runtime
from cxr_core.http import install_error_handlers, json_response
from cxr_core.services.jobs import submit_view
from cxr_core.services.submit import submit_image
from cxr_core.upload import body_bytes, parse_upload

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)


@app.post("/v1/jobs")
def submit_job():
    event = app.current_event
    data = body_bytes(event.body, event.is_base64_encoded)
    upload = parse_upload(event.headers.get("content-type"), data, runtime().settings.max_upload_bytes)
    outcome = submit_image(upload, runtime().submit_deps())
    metrics.add_metric(name="JobsCreated" if outcome.created else "JobsAnsweredFromCache",
                       unit=MetricUnit.Count, value=1)
    return json_response(201 if outcome.created else 200, submit_view(outcome.job, outcome.created))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
