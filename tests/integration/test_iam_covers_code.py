"""Least privilege that works: every AWS call the real handlers make is allowed by their role in template.yaml.

The handlers run against moto (which does not enforce IAM) with botocore's API calls recorded; each call is
mapped to the IAM action and resource ARN AWS would authorise, and checked against the function's role as
template.yaml declares it (resolved by the local stack's resolver for the same stack).
"""
from __future__ import annotations

import fnmatch
import json
import subprocess
import textwrap

import pytest

from cxr_local.intrinsics import StackIdentity
from cxr_local.template import StackTemplate
from tests.integration.conftest import REPO, STACK_PARAMETERS, python_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROLE_OF = {"submit": "SubmitFunctionRole", "poll": "PollFunctionRole", "infer": "InferFunctionRole"}

SCRIPT = textwrap.dedent("""
    import base64, importlib.util, json
    from pathlib import Path
    import botocore.client, requests

    calls, current = [], {"function": None}
    original = botocore.client.BaseClient._make_api_call

    def recorded(self, operation, params):
        service = self.meta.service_model.service_name
        entry = {"function": current["function"], "service": service, "operation": operation,
                 "params": {k: v for k, v in params.items() if k in ("TableName", "IndexName", "Bucket", "Key",
                                                                      "QueueUrl", "TopicArn", "logGroupName",
                                                                      "logStreamName", "Prefix")}}
        if operation == "TransactWriteItems":
            entry["items"] = [[kind, item["TableName"]] for spec in params["TransactItems"] for kind, item in spec.items()]
        if operation == "BatchGetItem":
            entry["items"] = [["Get", table] for table in params["RequestItems"]]
        try:
            result = original(self, operation, params)
            entry["status"] = 200
            return result
        except botocore.exceptions.ClientError as error:
            entry["status"] = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise
        finally:
            if current["function"]:
                calls.append(entry)

    botocore.client.BaseClient._make_api_call = recorded

    def handler(function):
        spec = importlib.util.spec_from_file_location(f"{function}_app", Path("functions") / function / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        def invoke(event):
            current["function"] = function
            try:
                return module.lambda_handler(event, Context())
            finally:
                current["function"] = None
        return invoke

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "iam", 512, "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:iam"

    from cxr_core.bootstrap import runtime
    key = runtime().api_keys.create("iam-check", operator=True)

    def event(name, job_id=None):
        data = json.loads(Path("events", name).read_text())
        if "headers" in data:
            data["headers"]["x-api-key"] = key
        sample = "3f6c1c8e-2d4b-4f7e-9a51-0c8f2b7d6e14"
        return json.loads(json.dumps(data).replace(sample, job_id)) if job_id else data

    import os, time
    from tests.images import perturbed_png
    seed = os.getpid() * 100_000 + int(time.time()) % 100_000

    def png_event(data):  # a fresh image each run: a cached answer would skip the calls worth checking
        request = event("submit_png.json")
        request["body"] = base64.b64encode(data).decode()
        request["headers"]["content-length"] = str(len(data))
        return request

    import boto3
    logs = boto3.client("logs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    try:  # the audit trail's log group, as the stack creates it on AWS
        logs.create_log_group(logGroupName=os.environ["AUDIT_LOG_GROUP"])
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    submit, poll, infer = handler("submit"), handler("poll"), handler("infer")
    created = submit(png_event(perturbed_png(seed)))
    assert created["statusCode"] == 201, created
    job = json.loads(created["body"])
    upload_request = event("submit_png.json")
    upload_request.update(body=json.dumps({"content_type": "image/png", "size": len(perturbed_png(seed + 1))}),
                          isBase64Encoded=False,
                          routeKey="POST /v1/uploads", rawPath="/dev/v1/uploads")
    upload_request["requestContext"]["http"]["path"] = "/dev/v1/uploads"
    upload_request["headers"]["content-type"] = "application/json"
    upload = json.loads(submit(upload_request)["body"])
    assert requests.put(upload["url"], data=perturbed_png(seed + 1), headers=upload["headers"]).ok
    by_upload = event("submit_png.json")
    by_upload.update(body=json.dumps({"upload_id": upload["upload_id"]}), isBase64Encoded=False)
    by_upload["headers"]["content-type"] = "application/json"
    assert submit(by_upload)["statusCode"] == 201

    sqs = event("infer_sqs.json")
    body = json.loads(sqs["Records"][0]["body"])
    body.update(job_id=job["id"], model_id=runtime().jobs.get_job(job["id"]).model_id)
    sqs["Records"][0]["body"] = json.dumps(body)
    assert infer(sqs) == {"batchItemFailures": []}
    busy = json.loads(submit(png_event(perturbed_png(seed + 2)))["body"])
    runtime().jobs.claim_jobs([busy["id"]], "elsewhere", 60)  # a record whose job runs elsewhere: deferred
    body.update(job_id=busy["id"])
    sqs["Records"][0]["body"] = json.dumps(body)
    assert infer(sqs)["batchItemFailures"]
    hit = submit(png_event(perturbed_png(seed)))  # the same bytes again: a cache hit, a job COMPLETED (and announced) at once
    assert hit["statusCode"] == 200, hit
    infer(event("infer_recovery_schedule.json"))
    from cxr_worker.healthcheck import check_ready  # the EC2 worker's healthcheck, under the infer policy
    current["function"] = "infer"
    try:
        assert check_ready(runtime())[0]
    finally:
        current["function"] = None
    for name in ("poll_get_job.json", "poll_get_result.json"):
        assert poll(event(name, job["id"]))["statusCode"] == 200
    heatmap = json.loads(json.dumps(event("poll_get_result.json", job["id"])).replace("/result", "/heatmap"))
    drawn = poll(heatmap)  # draws on the model input the infer call stored
    assert drawn["statusCode"] == 200 and drawn["isBase64Encoded"], drawn.get("body", "")[:300]
    listed = poll(event("poll_list_jobs.json"))
    assert listed["statusCode"] == 200 and job["id"] in listed["body"], listed
    assert submit(event("submit_delete_job.json", job["id"]))["statusCode"] == 204  # the job, its cache, its image
    for name in ("ops_health.json", "ops_ready.json", "ops_metrics.json", "ops_dlq.json"):
        assert poll(event(name))["statusCode"] == 200, name
    print("CALLS " + json.dumps(calls))
""")

TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
                    "Get": "BatchGetItem"}
SQS_ACTIONS = {"DeleteMessageBatch": "DeleteMessage", "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
               "SendMessageBatch": "SendMessage"}


def required_permissions(call: dict, identity: StackIdentity) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs AWS checks for one API call."""
    region, account, params = identity.region, identity.account_id, call["params"]
    if call["service"] == "dynamodb":
        def table_arn(table: str) -> str:
            return f"arn:aws:dynamodb:{region}:{account}:table/{table}"
        if "items" in call:
            return [(f"dynamodb:{TRANSACT_ACTIONS[kind]}", table_arn(table)) for kind, table in call["items"]]
        arn = table_arn(params["TableName"])
        if params.get("IndexName"):
            arn += f"/index/{params['IndexName']}"
        return [(f"dynamodb:{call['operation']}", arn)]
    if call["service"] == "s3":
        bucket_arn = f"arn:aws:s3:::{params['Bucket']}"
        if "Key" not in params:  # a bucket-level call (readiness: GetBucketLocation; an erasure's listing)
            return [(f"s3:{ {'ListObjectsV2': 'ListBucket'}.get(call['operation'], call['operation'])}", bucket_arn)]
        action = {"HeadObject": "GetObject"}.get(call["operation"], call["operation"])
        needed = [(f"s3:{action}", f"{bucket_arn}/{params['Key']}")]
        if call["operation"] == "HeadObject" and call["status"] == 404:
            needed.append(("s3:ListBucket", bucket_arn))  # without it AWS answers 403, not 404
        return needed
    if call["service"] == "sns":
        return [(f"sns:{call['operation']}", params["TopicArn"])]
    if call["service"] == "logs":
        arn = f"arn:aws:logs:{region}:{account}:log-group:{params['logGroupName']}"
        return [(f"logs:{call['operation']}", f"{arn}:log-stream:{params.get('logStreamName', '')}")]
    if call["service"] == "sqs":
        name = params["QueueUrl"].rsplit("/", 1)[-1]
        return [(f"sqs:{SQS_ACTIONS.get(call['operation'], call['operation'])}", f"arn:aws:sqs:{region}:{account}:{name}")]
    raise AssertionError(f"unexpected service {call['service']}")


def role_grants(stack: StackTemplate, role: str) -> list[tuple[set[str], list[str]]]:
    props = stack.raw["Resources"][role]["Properties"]
    documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
    documents += [stack.raw["Resources"][arn["Ref"]]["Properties"]["PolicyDocument"]
                  for arn in props.get("ManagedPolicyArns", [])]
    grants = []
    for document in stack.resolver.resolve(documents):
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                grants.append((set(actions), resources))
    return grants


def allowed(grants, action: str, arn: str) -> bool:
    return any(action in actions and any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources)
               for actions, resources in grants)


@pytest.fixture(scope="module")
def recorded_calls(stack_env) -> list[dict]:
    command, env = python_with({**stack_env, "AUTH_MODE": "api_key", "POWERTOOLS_METRICS_DISABLED": "true",
                                "POWERTOOLS_TRACE_DISABLED": "true"})
    done = subprocess.run(command + ["-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("CALLS ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("CALLS "):])


def test_every_call_of_every_handler_is_allowed_by_its_role(recorded_calls, stack_env):
    identity = StackIdentity(stack_name="cxr-local", queue_url_base=stack_env["AWS_ENDPOINT_URL"])
    stack = StackTemplate(REPO / "template.yaml", STACK_PARAMETERS, identity)
    assert {call["function"] for call in recorded_calls} == set(ROLE_OF)
    denied = set()
    for call in recorded_calls:
        grants = role_grants(stack, ROLE_OF[call["function"]])
        for action, arn in required_permissions(call, identity):
            if not allowed(grants, action, arn):
                denied.add((call["function"], action, arn))
    assert not denied, sorted(denied)


def test_the_recording_saw_the_calls_that_matter(recorded_calls):
    """Guards the guard: the flow exercised transactions, the index query, uploads and the queue."""
    operations = {(call["function"], call["operation"]) for call in recorded_calls}
    assert {("submit", "TransactWriteItems"), ("submit", "SendMessage"), ("submit", "HeadObject"),
            ("submit", "DeleteObject"), ("infer", "GetObject"), ("infer", "ChangeMessageVisibilityBatch"),
            ("poll", "Query"), ("poll", "GetQueueAttributes"), ("poll", "GetBucketLocation"),
            ("infer", "GetBucketLocation"), ("infer", "Publish"), ("submit", "Publish"), ("infer", "PutObject"),
            ("poll", "GetObject"),
            ("submit", "DeleteItem"), ("submit", "UpdateItem"), ("submit", "DeleteObject"),
            ("submit", "ListObjectsV2"), ("submit", "PutLogEvents"), ("poll", "PutLogEvents")} <= operations
    queried = {call["params"].get("IndexName") for call in recorded_calls if call["operation"] == "Query"}
    assert "client-created-index" in queried
