"""cxr_local's API Gateway emulation: routing, HTTP API payload v2.0 events, Lambda result mapping."""
import base64
import json

from cxr_local.apigw import LambdaContext, Router, build_event, is_text_content, map_result
from cxr_local.template import Route

ROUTES = [Route("POST", "/v1/jobs", "Submit"), Route("GET", "/v1/jobs/{id}", "Poll"),
          Route("GET", "/v1/jobs/{id}/result", "Poll"), Route("GET", "/v1/ops/health", "Poll"),
          Route("GET", "/v1/jobs/special", "Special")]


def _event(method="GET", path="/v1/jobs/abc", query="", headers=(), body=b"", **kwargs):
    match, _ = Router(ROUTES).match(method, path)
    return build_event(method=method, raw_path=path, raw_query=query, headers=list(headers), body=body,
                       match=match, source_ip="127.0.0.1", now=1_700_000_000.5, request_id="req-1", **kwargs)


def test_router_matches_params_methods_and_prefers_exact_paths():
    router = Router(ROUTES)
    match, _ = router.match("GET", "/v1/jobs/123/result")
    assert match.route.path == "/v1/jobs/{id}/result" and match.path_parameters == {"id": "123"}
    assert router.match("GET", "/v1/jobs/special")[0].route.function == "Special"
    assert router.match("DELETE", "/v1/jobs/1") == (None, True)  # known path, wrong method: 405
    assert router.match("GET", "/v1/nothing") == (None, False)  # 404
    assert router.match("GET", "/v1/jobs/a/b")[0] is None  # {id} does not span segments


def test_v2_event_shape():
    event = _event(query="a=1&b=2&a=3", headers=[("User-Agent", "curl/8"), ("X-Multi", "1"), ("x-multi", "2"),
                                                   ("Cookie", "s=1; t=2")])
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v1/jobs/{id}"
    assert event["rawPath"] == "/v1/jobs/abc" and event["rawQueryString"] == "a=1&b=2&a=3"
    assert event["queryStringParameters"] == {"a": "1,3", "b": "2"}
    assert event["pathParameters"] == {"id": "abc"}
    assert event["headers"] == {"user-agent": "curl/8", "x-multi": "1,2", "x-forwarded-for": "127.0.0.1",
                                "x-forwarded-proto": "http", "x-forwarded-port": "80"}
    assert event["cookies"] == ["s=1", "t=2"]
    context = event["requestContext"]
    assert context["http"] == {"method": "GET", "path": "/v1/jobs/abc", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "curl/8"}
    assert context["requestId"] == "req-1" and context["routeKey"] == "GET /v1/jobs/{id}"
    assert context["stage"] == "$default"
    assert context["timeEpoch"] == 1_700_000_000_500 and context["time"] == "14/Nov/2023:22:13:20 +0000"
    assert "body" not in event and event["isBase64Encoded"] is False


def test_binary_and_multipart_bodies_are_base64_text_bodies_are_not():
    png = b"\x89PNG\r\n\x1a\n\x00\x01"
    event = _event("POST", "/v1/jobs", headers=[("Content-Type", "image/png")], body=png)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == png
    multipart = _event("POST", "/v1/jobs", headers=[("Content-Type", "multipart/form-data; boundary=x")],
                       body=b"--x\r\n")
    assert multipart["isBase64Encoded"] is True
    text = _event("POST", "/v1/jobs", headers=[("Content-Type", "application/json; charset=utf-8")],
                  body=b'{"a": 1}')
    assert text["isBase64Encoded"] is False and text["body"] == '{"a": 1}'
    assert "pathParameters" not in text
    assert is_text_content("text/plain") and is_text_content("application/problem+json")
    assert not is_text_content("application/dicom") and not is_text_content(None)


def test_stage_prefixed_path_keeps_the_stage_like_a_named_stage():
    match, _ = Router(ROUTES).match("GET", "/v1/ops/health")
    event = build_event(method="GET", raw_path="/local/v1/ops/health", raw_query="", headers=[], body=b"",
                        match=match, source_ip="::1", stage="local")
    assert event["rawPath"] == "/local/v1/ops/health" and event["requestContext"]["stage"] == "local"


def test_powertools_resolves_the_event_to_the_right_route():
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    app = APIGatewayHttpResolver()

    @app.get("/v1/jobs/<job_id>")
    def job(job_id):
        return {"id": job_id, "q": app.current_event.get_query_string_value("a")}

    @app.post("/v1/jobs")
    def submit():
        return {"bytes": len(app.current_event.decoded_body.encode("latin-1"))
                if not app.current_event.is_base64_encoded else len(base64.b64decode(app.current_event.body))}

    response = map_result(app.resolve(_event(query="a=7"), LambdaContext("f", 128, 3, "us-east-1", "1")))
    assert response.status == 200 and json.loads(response.body) == {"id": "abc", "q": "7"}
    posted = map_result(app.resolve(_event("POST", "/v1/jobs", headers=[("Content-Type", "image/png")],
                                           body=bytes(range(256))), None))
    assert json.loads(posted.body) == {"bytes": 256}


def test_result_mapping():
    plain = map_result({"statusCode": 201, "headers": {"X-A": "1"}, "body": '{"ok":true}', "cookies": ["c=1"]})
    assert plain.status == 201 and plain.body == b'{"ok":true}'
    assert ("X-A", "1") in plain.headers and ("Set-Cookie", "c=1") in plain.headers
    assert ("Content-Type", "application/json") in plain.headers
    binary = map_result({"statusCode": 200, "headers": {"Content-Type": "image/png"},
                         "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True})
    assert binary.body == b"\x00\x01" and ("Content-Type", "image/png") in binary.headers
    inferred = map_result({"id": 1})
    assert inferred.status == 200 and json.loads(inferred.body) == {"id": 1}


def test_lambda_context():
    context = LambdaContext("cxr-local-submit", 512, 10, "us-east-1", "123456789012")
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:cxr-local-submit"
    assert context.memory_limit_in_mb == 512 and context.aws_request_id
    assert 9000 < context.get_remaining_time_in_millis() <= 10000
