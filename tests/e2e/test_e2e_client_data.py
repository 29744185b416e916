"""Issue 27 over real HTTP on the local stack: a client's own listing, erasure (the cache, the shared image, a job
in flight), the audit trail in the ready file's audit log, and the CLI's `jobs`, `delete` and scoped submit-dir."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from cxr_local.processes import free_port
from tests.e2e.conftest import REPO, assert_json_error, wait_for_terminal_status
from tests.images import perturbed_png

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def admin(stack, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return subprocess.run([sys.executable, "-m", "cxr_core.admin", "--stack", str(stack.ready_file), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def new_client(stack) -> requests.Session:
    created = admin(stack, "keys", "create", "--client", f"hospital-{uuid.uuid4().hex[:8]}")
    assert created.returncode == 0, created.stderr
    session = requests.Session()
    session.headers["x-api-key"] = json.loads(created.stdout)["api_key"]
    return session


def submit(session: requests.Session, url: str, data: bytes) -> dict:
    response = session.post(f"{url}/v1/jobs", data=data, headers={"Content-Type": "image/png"}, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def seed() -> int:
    return int(uuid.uuid4().int % 10**9)


def test_the_listing_pages_a_clients_own_jobs_newest_first_and_never_anothers(local_stack):
    url = local_stack.url
    mine, theirs = new_client(local_stack), new_client(local_stack)
    created = []
    for _ in range(5):
        created.append(submit(mine, url, perturbed_png(seed()))["id"])
        time.sleep(0.002)  # distinct creation milliseconds: the order is observable
    other = submit(theirs, url, perturbed_png(seed()))["id"]
    listed, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = mine.get(f"{url}/v1/jobs", params=params, timeout=10)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["jobs"]) <= 2 and set(body) == {"jobs", "next_cursor"}
        listed += body["jobs"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [job["id"] for job in listed] == list(reversed(created))
    assert all({"id", "status", "created_at"} <= set(job) and "result" not in job for job in listed)
    assert other not in {job["id"] for job in listed}
    stolen = theirs.get(f"{url}/v1/jobs", params={"cursor": mine.get(f"{url}/v1/jobs", params={"limit": 1}
                                                                       ).json()["next_cursor"]}, timeout=10)
    assert_json_error(stolen, 400, "BAD_REQUEST")  # another client's cursor reads nothing
    assert_json_error(mine.get(f"{url}/v1/jobs", params={"limit": 101}, timeout=10), 400, "BAD_REQUEST")
    assert requests.get(f"{url}/v1/jobs", timeout=10).status_code == 401


def test_the_listing_filters_by_status_and_time(local_stack):
    url = local_stack.url
    mine = new_client(local_stack)
    done = submit(mine, url, perturbed_png(seed()))
    wait_for_terminal_status(mine, url, done["id"])
    completed = mine.get(f"{url}/v1/jobs", params={"status": "COMPLETED"}, timeout=10).json()["jobs"]
    assert [job["id"] for job in completed] == [done["id"]]
    assert mine.get(f"{url}/v1/jobs", params={"status": "FAILED"}, timeout=10).json()["jobs"] == []
    assert mine.get(f"{url}/v1/jobs", params={"until": "2000-01-01T00:00:00Z"}, timeout=10).json()["jobs"] == []
    since = mine.get(f"{url}/v1/jobs", params={"since": done["created_at"]}, timeout=10).json()["jobs"]
    assert done["id"] in {job["id"] for job in since}


def test_delete_erases_the_job_its_result_and_cache_and_a_second_delete_is_404(local_stack):
    url = local_stack.url
    mine, theirs = new_client(local_stack), new_client(local_stack)
    data = perturbed_png(seed())
    job = submit(mine, url, data)
    wait_for_terminal_status(mine, url, job["id"])
    assert submit(mine, url, data)["cached"]  # the cache knows the image
    assert_json_error(theirs.delete(f"{url}/v1/jobs/{job['id']}", timeout=10), 404, "JOB_NOT_FOUND")
    erased = mine.delete(f"{url}/v1/jobs/{job['id']}", timeout=30)
    assert erased.status_code == 204 and erased.content == b""
    assert_json_error(mine.get(f"{url}/v1/jobs/{job['id']}", timeout=10), 404, "JOB_NOT_FOUND")
    assert_json_error(mine.get(f"{url}/v1/jobs/{job['id']}/result", timeout=10), 404, "JOB_NOT_FOUND")
    assert_json_error(mine.delete(f"{url}/v1/jobs/{job['id']}", timeout=10), 404, "JOB_NOT_FOUND")
    again = submit(mine, url, data)
    assert not again.get("cached") and again["id"] != job["id"]  # no cached answer brings the result back


def test_the_shared_image_stays_until_the_last_job_that_needs_it_is_deleted(local_stack):
    url = local_stack.url
    mine, theirs = new_client(local_stack), new_client(local_stack)
    data = perturbed_png(seed())
    first, second = submit(mine, url, data), submit(theirs, url, data)
    s3, bucket = local_stack.aws("s3"), local_stack.info["aws_env"]["IMAGES_BUCKET"]
    key = f"images/{__import__('hashlib').sha256(data).hexdigest()}"

    def stored() -> bool:
        return s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 1

    assert mine.delete(f"{url}/v1/jobs/{first['id']}", timeout=30).status_code == 204
    assert stored()  # the other client's job still needs it
    body, _ = wait_for_terminal_status(theirs, url, second["id"])
    assert body["status"] == "COMPLETED"  # and ran on it
    assert theirs.delete(f"{url}/v1/jobs/{second['id']}", timeout=30).status_code == 204
    assert not stored()


def test_every_access_leaves_one_audit_line_and_admin_prints_a_jobs_history(local_stack):
    url = local_stack.url
    mine = new_client(local_stack)
    job = submit(mine, url, perturbed_png(seed()))
    wait_for_terminal_status(mine, url, job["id"])
    mine.get(f"{url}/v1/jobs/{job['id']}/result", timeout=10)
    mine.get(f"{url}/v1/jobs", timeout=10)
    mine.delete(f"{url}/v1/jobs/{job['id']}", timeout=30)
    audit_path = local_stack.info["logs"]["audit"]
    lines = [json.loads(line) for line in open(audit_path, encoding="utf-8")]
    routes = [line["route"] for line in lines if line.get("job_id") == job["id"]]
    assert routes[0] == "POST /v1/jobs" and routes[-2:] == ["GET /v1/jobs/{id}/result", "DELETE /v1/jobs/{id}"]
    assert "GET /v1/jobs/{id}" in routes
    owner = next(line["client_id"] for line in lines if line.get("job_id") == job["id"])
    assert all(line["client_id"] == owner and line["outcome"] < 300 for line in lines if line.get("job_id") == job["id"])
    assert any(line["route"] == "GET /v1/jobs" and line.get("client_id") == owner and line["count"] == 1
               for line in lines)
    assert any(line["route"] == "GET /v1/ops/ready" and line["operator"] for line in lines)  # the stack's own check
    text = open(audit_path, encoding="utf-8").read()
    assert mine.headers["x-api-key"] not in text and '"output"' not in text  # never keys, never scores
    printed = admin(local_stack, "audit", job["id"])
    assert printed.returncode == 0, printed.stderr
    assert [line.split()[1] + " " + line.split()[2] for line in printed.stdout.splitlines()] == routes
    assert admin(local_stack, "audit", str(uuid.uuid4())).returncode == 1


@pytest.fixture(scope="module")
def cxr(local_stack):
    def run(*args: str, key: str | None = None, endpoint: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
        env.update(CXR_ENDPOINT=endpoint or local_stack.url, CXR_API_KEY=key or local_stack.info["api_key"])
        return subprocess.run([sys.executable, "-m", "cxr_cli", *args], capture_output=True, text=True, env=env,
                              timeout=180)
    return run


def test_cxr_jobs_and_cxr_delete(local_stack, cxr):
    session = new_client(local_stack)
    key = session.headers["x-api-key"]
    job = submit(session, local_stack.url, perturbed_png(seed()))
    listed = cxr("jobs", "--json", key=key)
    assert listed.returncode == 0, listed.stderr
    assert [j["id"] for j in json.loads(listed.stdout)["jobs"]] == [job["id"]]
    assert job["id"] in cxr("jobs", key=key).stdout
    deleted = cxr("delete", job["id"], key=key)
    assert deleted.returncode == 0 and f"deleted {job['id']}" in deleted.stdout
    assert cxr("delete", job["id"], key=key).returncode == 5
    assert json.loads(cxr("jobs", "--json", key=key).stdout)["jobs"] == []


def test_submit_dir_fails_on_a_wrong_key_or_a_dead_server_even_when_the_manifest_has_every_file(local_stack, cxr,
                                                                                              tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "a.png").write_bytes(perturbed_png(seed()))
    first = cxr("submit-dir", str(folder), "--no-progress", "--json")
    assert first.returncode == 0, first.stderr
    again = cxr("submit-dir", str(folder), "--no-progress", "--json")
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[0])["from_manifest"]
    wrong = cxr("submit-dir", str(folder), "--no-progress", key="cxr_not_a_key")
    assert wrong.returncode == 3 and "401" in wrong.stderr and wrong.stdout == ""
    dead = cxr("submit-dir", str(folder), "--no-progress", endpoint=f"http://127.0.0.1:{free_port()}")
    assert dead.returncode == 3 and "cannot reach" in dead.stderr and dead.stdout == ""
    scope = json.loads((folder / ".cxr-manifest.jsonl").read_text().splitlines()[0])["scope"]
    health = requests.get(f"{local_stack.url}/v1/ops/health", timeout=10).json()["model"]
    assert scope == {"endpoint": local_stack.url,
                     "model": {k: health[k] for k in ("name", "weights_sha256", "preprocess")}}
