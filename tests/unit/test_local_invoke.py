"""cxr_local invoke's environment and error document, and env-json's file, from template.yaml alone (no processes)."""
from __future__ import annotations

from cxr_local.invoke import error_document, function_environment, local_layer
from cxr_local.sam_env import document_for_stack, stack_credentials, stack_template

from .template_support import REPO, TEMPLATE

ENDPOINT = "http://127.0.0.1:5123"


def test_invoke_environment_is_lambdas_plus_the_template_plus_declared_overrides_only(monkeypatch):
    monkeypatch.setenv("JOBS_TABLE", "from-the-shell")  # a shell variable never leaks into the function
    template = stack_template(TEMPLATE, {}, ENDPOINT)
    spec = template.function("PollFunction")
    env_vars = {"Parameters": {"STAGE": "p", "NOT_DECLARED": "x"}, "PollFunction": {"STAGE": "own", "JOBS_TABLE": "t"},
                "SubmitFunction": {"RESULTS_TABLE": "other function's"}}
    env = function_environment(spec, ENDPOINT, ("AKID", "SECRET"), env_vars, REPO, [])
    assert (env["STAGE"], env["JOBS_TABLE"]) == ("own", "t")  # the function's scope beats Parameters
    assert "NOT_DECLARED" not in env and env["RESULTS_TABLE"] == "cxr-local-results"
    assert env["QUEUE_URL"] == f"{ENDPOINT}/123456789012/cxr-local-jobs" and env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("AKID", "SECRET")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(spec.memory_mb) and env["AWS_SAM_LOCAL"] == "true"
    assert env["MODEL_DIR"] == str(REPO / "layers" / "model" / "weights")  # the model layer's /opt/weights here
    served = function_environment(spec, ENDPOINT, ("AKID", "SECRET"), {}, REPO, [], "/stack/weights")
    assert served["MODEL_DIR"] == "/stack/weights"  # a running stack's own model folder, from its ready file


def test_functions_get_exactly_their_declared_layers_from_local_sources():
    template = stack_template(TEMPLATE, {}, ENDPOINT)
    assert list(template.function_layers("PollFunction")) == ["CoreLayer"]
    assert list(template.function_layers("InferFunction")) == ["CoreLayer", "ModelLayer"]
    assert [local_layer(uri, REPO) for uri in template.function_layers("SubmitFunction").values()] == [
        REPO / "layers/core/python", REPO / "layers/model/python"]


def test_error_document_has_lambdas_shape():
    doc = error_document('Traceback (most recent call last):\n  File "app.py", line 3, in h\n    x["body"]\n'
                         "KeyError: 'body'", "req-1")
    assert doc == {"errorMessage": "'body'", "errorType": "KeyError", "requestId": "req-1",
                   "stackTrace": ['  File "app.py", line 3, in h', '    x["body"]']}


def test_env_json_names_the_stacks_resources_on_the_docker_host_and_credentials_come_from_the_ready_file():
    info = {"moto_endpoint": "http://0.0.0.0:5123", "params": {"Stage": "local"}}
    document = document_for_stack(info, TEMPLATE, "host.docker.internal")
    assert document["Parameters"] == {"AWS_ENDPOINT_URL": "http://host.docker.internal:5123"}
    assert document["InferFunction"]["DLQ_URL"] == "http://host.docker.internal:5123/123456789012/cxr-local-jobs-dlq"
    assert "MODEL_DIR" not in document["InferFunction"]  # in Docker the model layer's /opt/weights is right
    assert stack_credentials(info) == ("testing", "testing")
    assert stack_credentials({**info, "aws_access_key_id": "AK", "aws_secret_access_key": "S"}) == ("AK", "S")
