"""The local stack gives long polls (GET /v1/jobs/{id}?wait=N) their own execution environments."""
from cxr_local.__main__ import parse_args
from cxr_local.stack import LONG_POLL_ROUTE, LocalStack


def _stack() -> LocalStack:
    stack = LocalStack.__new__(LocalStack)
    stack.pools, stack.waiting_pools = {"PollFunction": "plain", "SubmitFunction": "submit"}, {"PollFunction": "waiting"}
    return stack


def test_only_a_job_status_request_with_wait_goes_to_the_waiting_pool():
    stack = _stack()
    assert stack._pool("PollFunction", {"routeKey": LONG_POLL_ROUTE, "queryStringParameters": {"wait": "20"}}) == "waiting"
    assert stack._pool("PollFunction", {"routeKey": LONG_POLL_ROUTE}) == "plain"  # the seed's polls
    assert stack._pool("PollFunction", {"routeKey": "GET /v1/jobs/{id}/result",
                                        "queryStringParameters": {"wait": "5"}}) == "plain"
    assert stack._pool("SubmitFunction", {"routeKey": "POST /v1/jobs", "queryStringParameters": {"wait": "1"}}) == "submit"


def test_the_waiting_pool_size_is_an_option(monkeypatch):
    monkeypatch.delenv("CXR_LOCAL_MAX_WAITING_POLLS", raising=False)
    assert parse_args([]).max_waiting_polls == 8
    assert parse_args(["--max-waiting-polls", "60"]).max_waiting_polls == 60
