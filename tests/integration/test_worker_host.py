"""The EC2 user data's worker command, run here against moto: a scale-in (lifecycle hook) drains it, nothing is lost.

No EC2 here: a loopback server plays the instance metadata service (IMDSv2, target lifecycle state) and the
Auto Scaling API's CompleteLifecycleAction, which moto does not implement; SQS/DynamoDB/S3 are moto's server.
"""
from __future__ import annotations

import subprocess
import threading
import time
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cxr_core.domain import JobStatus
from cxr_local.intrinsics import StackIdentity
from infra.worker_user_data import docker_run, image_command, render, worker_environment
from tests.integration.conftest import AWS_ENV, REPO, STACK_PARAMETERS, TEST_VISIBILITY_SECONDS, python_with
from cxr_local.waiting import wait_until
from tests.integration.test_infer_worker import statuses, submit  # noqa: F401 - submit is a fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]
INSTANCE_ID = "i-0123456789abcdef0"


class FakeEc2Host(ThreadingHTTPServer):
    """IMDSv2 (token, instance-id, autoscaling/target-lifecycle-state) + the Auto Scaling query API's one call."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target_state = "InService"
        self.completed: list[tuple[float, dict]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    server: FakeEc2Host

    def log_message(self, *_) -> None:
        pass

    def _answer(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:  # noqa: N802
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self._answer(200 if ok else 400, "token-1")

    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != "token-1":
            return self._answer(401, "")
        items = {"/latest/meta-data/instance-id": INSTANCE_ID,
                 "/latest/meta-data/autoscaling/target-lifecycle-state": self.server.target_state}
        self._answer(200, items[self.path]) if self.path in items else self._answer(404, "")

    def do_POST(self) -> None:  # noqa: N802
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        if form.get("Action") != "CompleteLifecycleAction":
            return self._answer(400, form.get("Action", ""))
        self.server.completed.append((time.time(), form))
        self._answer(200, '<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
                          "<CompleteLifecycleActionResult/><ResponseMetadata><RequestId>r1</RequestId>"
                          "</ResponseMetadata></CompleteLifecycleActionResponse>", "text/xml")


def test_scale_in_drains_the_batch_in_hand_then_completes_the_lifecycle_action(runtime, stack_env, submit, tmp_path):
    # the user data rendered for the stack the moto fixture created (same names, queue URLs on moto)
    identity = StackIdentity(stack_name="cxr-local", queue_url_base=stack_env["AWS_ENDPOINT_URL"])
    user_data = render({**STACK_PARAMETERS, "WorkerProcessesPerInstance": "1", "InferBatchSize": "4"}, identity)
    env = worker_environment(user_data)
    assert docker_run(user_data)[docker_run(user_data).index("--env-file") + 1] == "/etc/cxr-worker.env"
    host = FakeEc2Host()
    # what differs off EC2: endpoints, credentials, the weights' path (the image bakes them at /opt/weights)
    env.update(AWS_ENV, AWS_ENDPOINT_URL=stack_env["AWS_ENDPOINT_URL"], AWS_ENDPOINT_URL_AUTO_SCALING=host.url,
               AWS_EC2_METADATA_SERVICE_ENDPOINT=host.url, MODEL_DIR=stack_env["MODEL_DIR"],
               WORKER_LIFECYCLE_POLL_SECONDS="0.1", VISIBILITY_TIMEOUT_SECONDS=str(TEST_VISIBILITY_SECONDS),
               INFER_BATCH_WINDOW_SECONDS="0.2", POWERTOOLS_METRICS_DISABLED="true")
    job_ids = submit(10)
    command, full_env = python_with(env)
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen(command + image_command()[1:], cwd=REPO, env=full_env, stdout=log_path.open("w"),
                              stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: JobStatus.IN_PROGRESS in statuses(runtime, job_ids).values(), 90, 0.02)
        host.target_state = "Terminated"  # the group scales this instance in: its hook holds it in Terminating:Wait
        assert worker.wait(60) == 0, log_path.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
        host.shutdown()
    after = statuses(runtime, job_ids)
    completed = [job_id for job_id, status in after.items() if status is JobStatus.COMPLETED]
    queued = [job_id for job_id, status in after.items() if status is JobStatus.QUEUED]
    assert completed and len(completed) + len(queued) == len(job_ids), after  # the batch finished, none half done
    # nothing lost: every job not done still has its message waiting for the next worker
    depth = wait_until(lambda: (d := runtime.queue.depth())["in_flight"] == 0 and d, TEST_VISIBILITY_SECONDS + 5)
    assert depth["visible"] == len(queued)
    # the lifecycle action is completed once, for this instance and hook, after the last result was written
    [(completed_at, form)] = host.completed
    assert (form["LifecycleHookName"], form["AutoScalingGroupName"], form["InstanceId"],
            form["LifecycleActionResult"]) == ("drain", "cxr-local-workers", INSTANCE_ID, "CONTINUE")
    finished = max(datetime.fromisoformat(runtime.jobs.get_job(job_id).updated_at.replace("Z", "+00:00")).timestamp()
                   for job_id in completed)
    assert finished <= completed_at
    assert "draining the batch in hand" in log_path.read_text()
