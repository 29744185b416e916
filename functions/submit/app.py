"""The writes: POST /v1/jobs (201 queued or 200 cached/running), POST /v1/uploads, DELETE /v1/jobs/{id} (204); and
GET /v1/models."""
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

import cxr_model  # noqa: F401  (decoders imported in the init phase; the model itself is never loaded here)
from cxr_core.bootstrap import audit_log, runtime
from cxr_core.http import audited, caller, install_error_handlers, json_body, json_response
from cxr_core.services.erasure import delete_job
from cxr_core.services.jobs import submit_view
from cxr_core.services.models import choose_model, models_view
from cxr_core.services.submit import submit_image
from cxr_core.services.presigned_uploads import create_upload, taken_upload
from cxr_core.request_body import body_bytes, parse_upload

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
install_error_handlers(app, logger)
runtime()  # clients and settings built in the init phase, not on the first request


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


@app.post("/v1/jobs")
@audited(app, "POST /v1/jobs", audit_log)
def submit_job():
    rt = runtime()
    client_id = caller(app, rt.auth).client_id
    rt.rate_limiter.hit(client_id)
    event = app.current_event
    content_type = event.headers.get("content-type")
    body = json_body(app) if _is_json(content_type) else {}
    requested = event.get_query_string_value("model")
    if "upload_id" in body:  # null or not, it names a presigned upload: 400 unless it is one of the caller's
        model = choose_model(rt.served_models, rt.settings.model_name, requested, body.get("model"))
        with taken_upload(rt.images, rt.upload_claims, client_id, body["upload_id"], rt.upload_settings) as upload:
            outcome = submit_image(upload, rt.submit_deps(), client_id, model["model_id"])
    else:
        upload = parse_upload(content_type, body_bytes(event.body, event.is_base64_encoded),
                              rt.settings.max_upload_bytes)
        model = choose_model(rt.served_models, rt.settings.model_name, requested, upload.model)
        outcome = submit_image(upload, rt.submit_deps(), client_id, model["model_id"])
    app.append_context(audit_job_id=outcome.job.job_id)
    metrics.add_metric(name="JobsCreated" if outcome.created else "JobsAnsweredFromCache",
                       unit=MetricUnit.Count, value=1)
    return json_response(201 if outcome.created else 200, submit_view(outcome.job, outcome.created))


@app.get("/v1/models")
def list_models():
    rt = runtime()
    caller(app, rt.auth)
    return json_response(200, models_view(rt.served_models, rt.settings.model_name))


@app.post("/v1/uploads")
def new_upload():
    rt = runtime()
    client_id = caller(app, rt.auth).client_id
    rt.rate_limiter.hit(client_id)
    request = json_body(app) if _is_json(app.current_event.headers.get("content-type")) else {}
    return json_response(201, create_upload(rt.images, client_id, request, rt.upload_settings))


@app.delete("/v1/jobs/<job_id>")
@audited(app, "DELETE /v1/jobs/{id}", audit_log)
def erase_job(job_id: str):
    rt = runtime()
    client_id = caller(app, rt.auth).client_id
    rt.rate_limiter.hit(client_id)
    erased = delete_job(rt.erasure_deps(), job_id, client_id)
    metrics.add_metric(name="JobsDeleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ImagesDeleted", unit=MetricUnit.Count, value=int(erased.image_deleted))
    return Response(status_code=204, body="")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
