"""GET /v1/jobs, /v1/jobs/{id}, /v1/jobs/{id}/result, /v1/jobs/{id}/heatmap and /v1/ops/*: read-only views of jobs and the
service."""
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from cxr_core.bootstrap import audit_log, runtime
from cxr_core.fhir import FHIR_CONTENT_TYPE, diagnostic_report, parse_result_format
from cxr_core.http import audited, caller, install_error_handlers, json_response
from cxr_core.services import ops
from cxr_core.services.heatmaps import heatmap, parse_heatmap_query
from cxr_core.services.jobs import (get_job, get_result, job_view, list_jobs, long_poll_slot, parse_list_query,
                                    parse_wait, result_view, wait_for_job)

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)
runtime()  # clients and settings built in the init phase, not on the first request


RESPONSE_MARGIN_SECONDS = 2.0  # a long poll answers this long before the function's timeout


@app.get("/v1/jobs")
@audited(app, "GET /v1/jobs", audit_log)
def jobs_of_caller():
    rt = runtime()
    client_id = caller(app, rt.auth).client_id
    page = list_jobs(rt.jobs, client_id, parse_list_query(app.current_event.query_string_parameters or {}))
    app.append_context(audit_count=len(page["jobs"]))
    return json_response(200, page)


@app.get("/v1/jobs/<job_id>")
@audited(app, "GET /v1/jobs/{id}", audit_log)
def job_status(job_id: str):
    rt = runtime()
    client_id = caller(app, rt.auth).client_id
    wait = parse_wait(app.current_event.get_query_string_value("wait"))
    if wait is None:
        return json_response(200, job_view(get_job(rt.jobs, job_id, client_id), rt.settings.visibility_timeout_seconds))
    left = app.lambda_context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS
    wait = max(0.0, min(wait, left))
    with long_poll_slot(rt.long_poll_leases, client_id, wait, rt.settings.long_polls_per_client):
        job = wait_for_job(rt.jobs, job_id, client_id, wait, rt.settings.long_poll_interval_seconds)
    return json_response(200, job_view(job, rt.settings.visibility_timeout_seconds))


@app.get("/v1/jobs/<job_id>/result")
@audited(app, "GET /v1/jobs/{id}/result", audit_log)
def job_result(job_id: str):
    client_id = caller(app, runtime().auth).client_id
    result_format = parse_result_format(app.current_event.get_query_string_value("format"))
    view = result_view(get_result(runtime().jobs, job_id, client_id))
    if result_format == "fhir":
        return json_response(200, diagnostic_report(view), {"Content-Type": FHIR_CONTENT_TYPE})
    return json_response(200, view)


@app.get("/v1/jobs/<job_id>/heatmap")
@audited(app, "GET /v1/jobs/{id}/heatmap", audit_log)
def job_heatmap(job_id: str):
    rt = runtime()
    client_id = caller(app, rt.auth).client_id
    event = app.current_event
    query = parse_heatmap_query(event.get_query_string_value("label"), event.get_query_string_value("format"),
                                event.get_query_string_value("opacity"))
    content_type, body = heatmap(rt.jobs, rt.images, job_id, client_id, query)
    if isinstance(body, dict):
        return json_response(200, body)
    return Response(status_code=200, content_type=content_type, body=body,  # bytes: sent base64-encoded
                    headers={"Cache-Control": "private, max-age=3600"}, compress=False)


@app.get("/v1/ops/health")
def health():
    return json_response(200, ops.health(runtime().model_identity))


@app.get("/v1/ops/ready")
@audited(app, "GET /v1/ops/ready", audit_log)
def ready():
    caller(app, runtime().auth).require_operator()  # it costs one AWS call per dependency
    report = ops.readiness(runtime().readiness_probes())
    return json_response(200 if report["status"] == "ready" else 503, report)


@app.get("/v1/ops/metrics")
@audited(app, "GET /v1/ops/metrics", audit_log)
def service_metrics():
    caller(app, runtime().auth).require_operator()
    return json_response(200, ops.metrics(runtime().jobs, runtime().queue))


@app.get("/v1/ops/dlq")
@audited(app, "GET /v1/ops/dlq", audit_log)
def dead_letters():
    caller(app, runtime().auth).require_operator()
    return json_response(200, ops.dead_letters(runtime().jobs, runtime().queue))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    metrics.add_metric(name="PollRequests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
