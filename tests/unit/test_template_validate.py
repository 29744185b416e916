"""template.yaml passes the SAM translator (`sam validate`) and cfn-lint offline, and declares what the code reads."""
from __future__ import annotations

import ast
import json
import re

import pytest
from cfnlint.api import ManualArgs, lint, lint_file
from samtranslator.translator.transform import transform

from infra.worker_user_data import render, worker_environment

from .template_support import (REPO, TEMPLATE, NoManagedPolicies, raw, resources_of_type, translated,
                               with_s3_code_uris)

DESIGN_ROUTES = {
    ("POST", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("GET", "/v1/jobs/{id}/result"),
    ("GET", "/v1/ops/health"), ("GET", "/v1/ops/metrics"), ("GET", "/v1/ops/dlq"),
    ("POST", "/v1/uploads"),  # beyond DESIGN.md: presigned S3 upload for bodies past API Gateway's limits
    ("GET", "/v1/ops/ready"),  # beyond DESIGN.md: readiness (tables, bucket, queues, model), operators only
    ("GET", "/v1/jobs/{id}/heatmap"),  # beyond DESIGN.md: a finding's class activation map (issue 26)
    ("GET", "/v1/models"),  # beyond DESIGN.md: the served models (issue 26)
    ("GET", "/v1/jobs"), ("DELETE", "/v1/jobs/{id}"),  # beyond DESIGN.md: a client's own jobs, and their erasure
}
# Read by cxr_core/config.py but set by the platform (Lambda runtime, EC2 user data) or only locally.
PLATFORM_SETTINGS = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION", "AWS_DEFAULT_REGION",
                     "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                     "AUDIT_LOG_FILE"}  # the local stack's audit trail (on AWS: AUDIT_LOG_GROUP, declared)


def test_sam_translator_accepts_the_template():
    resources = translated()["Resources"]
    kinds = {spec["Type"] for spec in resources.values()}
    assert not {kind for kind in kinds if kind.startswith("AWS::Serverless::")}
    assert {"AWS::Lambda::EventSourceMapping", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage"} <= kinds
    assert len(resources_of_type(translated(), "AWS::Lambda::Function")) == 3


@pytest.mark.parametrize("regions", [["us-east-1"], ["eu-west-1", "ap-northeast-2"]])
def test_cfn_lint_reports_nothing_not_even_informational(regions):
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=regions, include_checks=["I"]))
    assert [str(match) for match in matches] == []


def lint_translated(template: dict) -> list[str]:
    """cfn-lint (1.x validates SAM resources by schema only) over what the SAM transform really produces.
    W1020: the translator itself resolves parameter defaults inside layer names' Fn::Sub."""
    config = ManualArgs(regions=["us-east-1"], ignore_checks=["W1020"], include_checks=["I"])
    return [str(match) for match in lint(json.dumps(template), config=config)]


def test_cfn_lint_reports_nothing_after_the_sam_transform():
    assert lint_translated(translated()) == []


def test_lint_of_the_transform_catches_what_schema_lint_misses():
    """Guards the guard: a dangling Role reference in a SAM function passes schema-only cfn-lint, not this run."""
    broken = raw()
    broken["Resources"]["PollFunction"]["Properties"]["Role"] = {"Fn::GetAtt": ["PollFunctionRol", "Arn"]}
    assert any("PollFunctionRol" in match for match in lint_translated(
        transform(with_s3_code_uris(broken), {}, NoManagedPolicies())))


def test_every_function_uses_a_current_python_runtime():
    for name, function in resources_of_type(translated(), "AWS::Lambda::Function").items():
        major, minor = map(int, re.fullmatch(r"python(\d+)\.(\d+)", function["Properties"]["Runtime"]).groups())
        assert (major, minor) >= (3, 12), name


def test_http_api_routes_are_the_design_contract_plus_uploads():
    routes = set()
    for function in resources_of_type(raw(), "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
                routes.add((event["Properties"]["Method"], event["Properties"]["Path"]))
    assert routes == DESIGN_ROUTES


def test_globals_declare_every_setting_config_reads():
    source = (REPO / "layers/core/python/cxr_core/config.py").read_text()
    read = {node.args[0].value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.args[0].value)}
    assert {"JOBS_TABLE", "QUEUE_URL", "MODEL_DIR"} <= read  # the parse found the settings
    declared = set(raw()["Globals"]["Function"]["Environment"]["Variables"])
    worker_only = {name for name in read if name.startswith("WORKER_") and name != "WORKER_PROCESSES"}
    assert read - PLATFORM_SETTINGS - worker_only <= declared
    assert worker_only <= set(worker_environment(render()))  # the EC2 launch template's env file declares them
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= declared
    assert raw()["Globals"]["Function"]["Tracing"] == "Active"


def test_every_parameter_is_used():
    template = raw()
    text = TEMPLATE.read_text()
    for name in template["Parameters"]:
        assert re.search(rf"(!Ref\s+|Ref:\s*|\$\{{){name}\b", text), f"parameter {name} is declared but unused"


def test_outputs_name_the_endpoints_operators_need():
    outputs = raw()["Outputs"]
    assert {"ApiUrl", "JobsQueueUrl", "JobsDeadLetterQueueUrl", "JobsTableName", "ResultsTableName",
            "ImagesBucketName", "WorkerRepositoryUri"} <= set(outputs)
    assert outputs["JobsQueueUrl"]["Value"] == {"Ref": "JobsQueue"}
    assert "${HttpApi}.execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]


def test_layers_point_at_the_build_script_output():
    """`sam build` zips these folders as they are; infra/build_layers.py fills them for python3.12."""
    layers = resources_of_type(raw(), "AWS::Serverless::LayerVersion")
    assert {spec["Properties"]["ContentUri"] for spec in layers.values()} == {"build/layers/core/",
                                                                              "build/layers/model/"}
    assert all(spec["Properties"]["CompatibleRuntimes"] == ["python3.12"] for spec in layers.values())
