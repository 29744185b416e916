"""cxr_local's template reader (SAM's parser and transform) and resolver: parameters, pseudo parameters, Ref/GetAtt/Sub,
conditions, and what the transform expands (Globals, HttpApi routes, SQS and schedule events)."""
from pathlib import Path

import pytest

from samtranslator.yaml_helper import yaml_parse

from cxr_local.intrinsics import Resolver, StackIdentity, TemplateError
from cxr_local.template import StackTemplate, declared_resources

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

SMALL = """
Parameters:
  Stage: {Type: String, Default: dev, AllowedPattern: "[a-z0-9-]+"}
  Retries: {Type: Number, Default: 5}
  Engine: {Type: String, Default: onnx, AllowedValues: [onnx, torch]}
Conditions:
  IsTorch: !Equals [!Ref Engine, torch]
  NotTorch: !Not [!Condition IsTorch]
Mappings:
  Visibility: {"5": {Seconds: 30}}
Globals:
  Function:
    Runtime: python3.12  # SAM's transform refuses a zip function without one, as `sam deploy` would
    Timeout: 7
    Environment:
      Variables:
        QUEUE_URL: !Ref Queue
        TABLE: !Ref Table
        SHARED: global
Resources:
  Dlq:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "app-${Stage}-dlq"}
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Join ["-", [app, !Ref Stage, jobs]]
      VisibilityTimeout: !FindInMap [Visibility, !Ref Retries, Seconds]
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: !Ref Retries}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "app-${Stage}-t"
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
  TorchOnly:
    Type: AWS::SQS::Queue
    Condition: IsTorch
    Properties: {QueueName: torch-only}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "b-${Stage}-${AWS::AccountId}-${AWS::Region}"
      Tags: [{Key: x, Value: !If [NotTorch, !Ref "AWS::NoValue", yes]}]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/x/
      Handler: app.lambda_handler
      Environment: {Variables: {OWN: !GetAtt Queue.QueueName, SHARED: own, LITERAL: !Sub "${!NotAVar}"}}
      Events:
        Get: {Type: HttpApi, Properties: {Path: "/v1/items/{id}", Method: get}}
        Post: {Type: HttpApi, Properties: {Path: /v1/items, Method: POST}}
        Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    return path


def test_short_tags_become_long_form_intrinsics(small):
    raw = yaml_parse(small.read_text())
    queue = raw["Resources"]["Queue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["Dlq", "Arn"]}
    assert queue["QueueName"] == {"Fn::Join": ["-", ["app", {"Ref": "Stage"}, "jobs"]]}
    assert raw["Conditions"]["NotTorch"] == {"Fn::Not": [{"Condition": "IsTorch"}]}


def test_stage_defaults_to_local_and_refs_resolve_to_physical_ids(small):
    template = StackTemplate(small)
    resolver = template.resolver
    assert template.parameters["Stage"] == "local"
    assert resolver.ref("Table") == "app-local-t"
    assert resolver.ref("Queue") == "https://sqs.us-east-1.amazonaws.com/123456789012/app-local-jobs"
    assert resolver.get_att("Dlq", "Arn") == "arn:aws:sqs:us-east-1:123456789012:app-local-dlq"
    assert resolver.ref("Bucket") == "b-local-123456789012-us-east-1"


def test_queue_url_follows_the_emulator_endpoint(small):
    identity = StackIdentity(queue_url_base="http://127.0.0.1:5000")
    assert StackTemplate(small, identity=identity).resolver.ref("Queue") == \
        "http://127.0.0.1:5000/123456789012/app-local-jobs"


def test_parameter_overrides_are_validated(small):
    assert StackTemplate(small, {"Stage": "qa", "Engine": "torch"}).resolver.ref("Table") == "app-qa-t"
    with pytest.raises(TemplateError, match="AllowedValues|one of"):
        StackTemplate(small, {"Engine": "tensorflow"})
    with pytest.raises(TemplateError, match="does not match"):
        StackTemplate(small, {"Stage": "Bad_Stage"})
    with pytest.raises(TemplateError, match="unknown"):
        StackTemplate(small, {"NoSuchParameter": "x"})
    with pytest.raises(TemplateError, match="Number"):
        StackTemplate(small, {"Retries": "many"})


def test_conditions_drop_resources_and_no_value(small):
    default = StackTemplate(small)
    assert "torch-only" not in default.queues()
    assert default.buckets()["b-local-123456789012-us-east-1"]["properties"]["Tags"] == [{"Key": "x"}]
    torch = StackTemplate(small, {"Engine": "torch"})
    assert "torch-only" in torch.queues()


def test_queues_carry_resolved_redrive_and_dependency_order(small):
    queues = StackTemplate(small).queues()
    jobs = queues["app-local-jobs"]
    assert jobs["attributes"]["VisibilityTimeout"] == "30"
    assert jobs["redrive"] == {"dead_letter_queue": "app-local-dlq", "max_receive_count": 5}
    assert jobs["depends_on"] == ["Dlq"]


def test_function_environment_merges_globals_with_its_own(small):
    function = StackTemplate(small).function("Fn")
    assert function.environment == {
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/app-local-jobs",
        "TABLE": "app-local-t", "SHARED": "own", "OWN": "app-local-jobs", "LITERAL": "${NotAVar}"}
    assert function.timeout_s == 7
    assert function.code_dir == (small.parent / "functions" / "x").resolve()


def test_only_http_api_events_become_routes(small):
    routes = StackTemplate(small).http_routes()
    assert sorted((route.method, route.path, route.function) for route in routes) == [
        ("GET", "/v1/items/{id}", "Fn"), ("POST", "/v1/items", "Fn")]
    assert {route.route_key for route in routes} == {"GET /v1/items/{id}", "POST /v1/items"}


def test_unknown_names_fail_loudly():
    resolver = Resolver({"Resources": {}})
    with pytest.raises(TemplateError):
        resolver.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError):
        resolver.resolve({"Fn::ImportValue": "x"})


def test_project_template_declares_the_designed_resources():
    declared = declared_resources(TEMPLATE)
    jobs_queue = next(q for q in declared["queues"].values() if q["redrive"])
    assert jobs_queue["redrive"]["dead_letter_queue"] in declared["queues"]
    assert jobs_queue["redrive"]["max_receive_count"] >= 1
    by_logical_id = {table["logical_id"]: table for table in declared["tables"].values()}
    assert by_logical_id["JobsTable"]["ttl_attribute"] and by_logical_id["ResultsTable"]["ttl_attribute"]
    assert len(declared["buckets"]) == 1
    assert {route.route_key for route in StackTemplate(TEMPLATE).http_routes()} >= {
        "POST /v1/jobs", "GET /v1/jobs/{id}", "GET /v1/jobs/{id}/result", "GET /v1/ops/health"}


def test_project_template_settings_reach_every_function():
    functions = StackTemplate(TEMPLATE).functions()
    for function in functions.values():
        env = function.environment
        assert env["STAGE"] == "local"
        assert env["JOBS_TABLE"] in declared_resources(TEMPLATE)["tables"]
        assert env["QUEUE_URL"].endswith("/" + next(
            name for name, q in declared_resources(TEMPLATE)["queues"].items() if q["redrive"]))
        assert (function.code_dir / (function.handler.split(".")[0] + ".py")).is_file()
