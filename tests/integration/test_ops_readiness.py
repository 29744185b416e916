"""Readiness: every probe runs, each failure is named, one failure makes the whole answer not ready."""
from dataclasses import replace
from pathlib import Path

from cxr_core.services.ops import health, readiness

MODEL = {"model_id": "m@1", "name": "m"}


def test_all_probes_answer_ready_with_the_model():
    calls = []
    report = readiness({"jobs_table": lambda: calls.append("jobs"), "queue": lambda: calls.append("queue"),
                        "model": lambda: MODEL})
    assert report["status"] == "ready" and report["model"] == MODEL and calls == ["jobs", "queue"]
    assert all(check["ok"] and check["ms"] >= 0 for check in report["checks"].values())


def test_one_failure_is_named_and_the_rest_still_run():
    def throttled():
        raise ConnectionError("endpoint unreachable")

    ran = []
    report = readiness({"images_bucket": throttled, "queue": lambda: ran.append(1), "model": lambda: MODEL})
    assert report["status"] == "not_ready" and ran == [1]
    assert report["checks"]["images_bucket"] == {"ok": False, "error": "ConnectionError: endpoint unreachable",
                                                 "ms": report["checks"]["images_bucket"]["ms"]}
    assert report["checks"]["queue"]["ok"] and report["model"] == MODEL


def test_health_stays_a_liveness_answer_that_calls_nothing():
    assert health(MODEL)["status"] == "ok"


def test_the_api_checks_more_than_a_worker_and_building_the_probes_calls_nothing():
    from cxr_core.bootstrap import Runtime
    from cxr_core.config import settings

    from tests.model_support import built_model_dir

    config = replace(settings(), model_dir=built_model_dir(), auth_mode="api_key", rate_limit_per_minute=60,
                     queue_url="http://127.0.0.1:9/q", dlq_url="http://127.0.0.1:9/dlq")
    rt = Runtime(config)
    assert list(rt.readiness_probes()) == ["jobs_table", "results_table", "api_keys_table", "rate_limits_table",
                                           "images_bucket", "queue", "dead_letter_queue", "model"]
    assert list(rt.readiness_probes(worker=True)) == ["jobs_table", "results_table", "images_bucket", "queue",
                                                      "model"]
    assert rt.readiness_probes()["model"]()["model_id"] == rt.model_identity["model_id"]
