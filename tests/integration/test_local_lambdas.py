"""cxr_local's execution environments: one process per instance, isolation, errors, timeouts, own environment."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cxr_local.lambdas import FunctionPool, LambdaError
from cxr_local.template import FunctionSpec

HANDLER = '''
import os, time
LAST = {}
if os.environ.get("FAIL_AT_INIT"):
    raise RuntimeError("broken at import")

def lambda_handler(event, context):
    LAST["event"] = event  # module state, as powertools keeps its current event
    time.sleep(event.get("sleep", 0))
    if event.get("boom"):
        raise ValueError("boom")
    return {"tag": LAST["event"]["tag"], "function": context.function_name, "env": os.environ.get("ONLY_MINE"),
            "pid": os.getpid(), "remaining": context.get_remaining_time_in_millis()}
'''


def _pool(tmp_path: Path, timeout_s: int = 5, max_instances: int = 2, **env) -> FunctionPool:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text(HANDLER)
    spec = FunctionSpec("TestFunction", "cxr-test-fn", tmp_path / "fn", "app.lambda_handler", 128, timeout_s,
                        {"ONLY_MINE": "yes", **env})
    return FunctionPool(spec, max_instances, "us-east-1", "123456789012")


@pytest.fixture
def pool(tmp_path):
    pool = _pool(tmp_path)
    pool.warm()
    yield pool
    pool.close()


def test_concurrent_events_never_see_each_other(pool):
    results = {}

    def call(tag):
        results[tag] = pool.invoke({"tag": tag, "sleep": 0.3}, f"req-{tag}")

    threads = [threading.Thread(target=call, args=(tag,)) for tag in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["a"]["tag"] == "a" and results["b"]["tag"] == "b"
    # both answers are right whether a second environment started in time or the second event waited its turn
    assert results["a"]["function"] == "cxr-test-fn" and results["a"]["env"] == "yes"
    assert 0 < results["a"]["remaining"] <= 5000


def test_handler_error_is_reported_and_the_instance_stays_warm(pool):
    first = pool.invoke({"tag": "x"}, "r1")
    with pytest.raises(LambdaError, match="boom") as error:
        pool.invoke({"tag": "y", "boom": True}, "r2")
    assert not error.value.timed_out
    assert pool.invoke({"tag": "z"}, "r3")["pid"] == first["pid"]


def test_timeout_kills_the_instance_and_the_next_event_gets_a_new_one(tmp_path):
    pool = _pool(tmp_path, timeout_s=1, max_instances=1)
    pool.warm()
    try:
        before = pool.invoke({"tag": "a"}, "r1")["pid"]
        with pytest.raises(LambdaError) as error:
            pool.invoke({"tag": "slow", "sleep": 5}, "r2")
        assert error.value.timed_out
        assert pool.invoke({"tag": "b"}, "r3")["pid"] != before
    finally:
        pool.close()


def test_init_error_is_kept_for_the_stack_to_report(tmp_path):
    pool = _pool(tmp_path, FAIL_AT_INIT="1")
    pool.warm()
    try:
        assert pool.init_error is not None and "broken at import" in str(pool.init_error)
    finally:
        pool.close()
