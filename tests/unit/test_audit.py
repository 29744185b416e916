"""The audit trail: one line per request of an audited route, whatever the answer, naming who, which job, what
status; never bytes, scores or keys. The file log keeps lines whole across writers and reads a job's history."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from cxr_core.audit import AuditEntry, FileAuditLog
from cxr_core.auth import Authenticator, Client, hash_key
from cxr_core.domain import job_not_found
from cxr_core.http import audited, caller, install_error_handlers, json_response

KEY = "cxr_secret_key_never_logged"


class MemoryAuditLog:
    def __init__(self):
        self.lines: list[dict] = []

    def write(self, entry):
        self.lines.append(json.loads(json.dumps(entry)))

    def history(self, job_id):
        return [line for line in self.lines if line.get("job_id") == job_id]


class Keys:
    def client_for(self, api_key):
        return Client("hospital-a") if hash_key(api_key) == hash_key(KEY) else None


def app_with(log: MemoryAuditLog):
    import logging

    app = APIGatewayHttpResolver()
    install_error_handlers(app, logging.getLogger("test"))
    auth = Authenticator("api_key", Keys())

    @app.get("/v1/jobs/<job_id>/result")
    @audited(app, "GET /v1/jobs/{id}/result", lambda: log)
    def result(job_id: str):
        caller(app, auth)
        if job_id != "job-1":
            raise job_not_found(job_id)
        return json_response(200, {"job_id": job_id, "output": {"Atelectasis": 0.73}})

    @app.post("/v1/jobs")
    @audited(app, "POST /v1/jobs", lambda: log)
    def submit():
        caller(app, auth)
        app.append_context(audit_job_id="job-new")
        return json_response(201, {"id": "job-new"})

    return app


def event(method: str, path: str, key: str | None = KEY, body: str | None = None) -> dict:
    headers = {"x-api-key": key} if key else {}
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": headers,
            "requestContext": {"http": {"method": method, "path": path, "sourceIp": "203.0.113.7"},
                               "requestId": "req-1", "stage": "$default"},
            "body": body, "isBase64Encoded": False}


def test_every_request_of_an_audited_route_leaves_one_line_whatever_the_answer():
    log = MemoryAuditLog()
    app = app_with(log)
    context = SimpleNamespace(function_name="poll", aws_request_id="r")
    answers = [app.resolve(event("GET", "/v1/jobs/job-1/result"), context)["statusCode"],
               app.resolve(event("GET", "/v1/jobs/job-2/result"), context)["statusCode"],
               app.resolve(event("GET", "/v1/jobs/job-1/result", key="wrong"), context)["statusCode"],
               app.resolve(event("POST", "/v1/jobs", body="x"), context)["statusCode"]]
    assert answers == [200, 404, 401, 201]
    assert [(line["route"], line.get("job_id"), line["outcome"], line.get("client_id")) for line in log.lines] == [
        ("GET /v1/jobs/{id}/result", "job-1", 200, "hospital-a"),
        ("GET /v1/jobs/{id}/result", "job-2", 404, "hospital-a"),
        ("GET /v1/jobs/{id}/result", "job-1", 401, None),  # a refused caller is named by nothing but its address
        ("POST /v1/jobs", "job-new", 201, "hospital-a")]
    assert all(line["type"] == "cxr.audit" and line["source_ip"] == "203.0.113.7" and line["time"]
               for line in log.lines)
    text = json.dumps(log.lines)
    assert KEY not in text and hash_key(KEY) not in text and "0.73" not in text  # no keys, no scores


def test_the_file_log_appends_whole_lines_from_many_writers_and_reads_a_jobs_history(tmp_path):
    path = tmp_path / "audit.log"
    writers = [FileAuditLog(str(path)) for _ in range(4)]
    entries = [AuditEntry.now(client_id=f"c{i % 3}", operator=False, route="GET /v1/jobs/{id}",
                              job_id=f"job-{i % 5}", outcome=200).to_dict() for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: writers[pair[0] % 4].write(pair[1]), enumerate(entries)))
    lines = path.read_text().splitlines()
    assert len(lines) == 200 and all(json.loads(line)["type"] == "cxr.audit" for line in lines)
    assert len(writers[0].history("job-3")) == 40 and writers[1].history("no-such-job") == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"
