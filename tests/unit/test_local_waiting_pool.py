"""The local stack gives long polls (GET /v1/jobs/{id}?wait=N) their own execution environments."""
from cxr_local.__main__ import parse_args
from cxr_local.http_functions import LONG_POLL_ROUTE, HttpFunctions


def _functions() -> HttpFunctions:
    functions = HttpFunctions.__new__(HttpFunctions)
    functions.pools = {"PollFunction": "plain", "SubmitFunction": "submit"}
    functions.waiting_pools = {"PollFunction": "waiting"}
    return functions


def test_only_a_job_status_request_with_wait_goes_to_the_waiting_pool():
    functions = _functions()
    assert functions.pool("PollFunction",
                          {"routeKey": LONG_POLL_ROUTE, "queryStringParameters": {"wait": "20"}}) == "waiting"
    assert functions.pool("PollFunction", {"routeKey": LONG_POLL_ROUTE}) == "plain"  # the seed's polls
    assert functions.pool("PollFunction", {"routeKey": "GET /v1/jobs/{id}/result",
                                            "queryStringParameters": {"wait": "5"}}) == "plain"
    assert functions.pool("SubmitFunction",
                          {"routeKey": "POST /v1/jobs", "queryStringParameters": {"wait": "1"}}) == "submit"


def test_the_waiting_pool_size_is_an_option(monkeypatch):
    monkeypatch.delenv("CXR_LOCAL_MAX_WAITING_POLLS", raising=False)
    assert parse_args([]).max_waiting_polls == 8
    assert parse_args(["--max-waiting-polls", "60"]).max_waiting_polls == 60
