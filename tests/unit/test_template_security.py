"""template.yaml's data resources, IAM, queue wiring and alarms: least privilege and the operational settings."""
from __future__ import annotations

import pytest

from .template_support import as_list, raw, resources_of_type, role_actions, role_statements, translated

# Actions AWS offers no resource-level permission for; the only ones allowed on Resource "*".
UNSCOPED_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken"}
LOGGING = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_no_wildcard_actions_and_no_unscoped_data_access():
    template = translated()
    policies = [spec["Properties"]["PolicyDocument"] for spec in resources_of_type(template, "AWS::IAM::ManagedPolicy").values()]
    for role in resources_of_type(template, "AWS::IAM::Role").values():
        policies += [policy["PolicyDocument"] for policy in role["Properties"].get("Policies", [])]
    statements = [s for policy in policies for s in as_list(policy["Statement"]) if s["Effect"] == "Allow"]
    assert statements
    for statement in statements:
        actions = set(as_list(statement["Action"]))
        assert not any("*" in action for action in actions), statement
        if "*" in as_list(statement["Resource"]):
            assert actions <= UNSCOPED_ACTIONS, statement


def test_functions_use_only_the_template_roles_and_no_aws_managed_policies():
    template = translated()
    roles = resources_of_type(template, "AWS::IAM::Role")
    for name, function in resources_of_type(template, "AWS::Lambda::Function").items():
        assert function["Properties"]["Role"] == {"Fn::GetAtt": [f"{name}Role", "Arn"]}
    for role in roles.values():
        assert all("Ref" in arn for arn in role["Properties"].get("ManagedPolicyArns", [])), "AWS managed policy"


@pytest.mark.parametrize("role, expected", [
    ("PollFunctionRole", {"dynamodb:GetItem", "dynamodb:Query", "sqs:GetQueueAttributes", "dynamodb:UpdateItem",
                          "s3:GetBucketLocation", "s3:GetObject"}),
    ("SubmitFunctionRole", {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem",
                            "dynamodb:ConditionCheckItem", "s3:PutObject", "s3:GetObject", "s3:DeleteObject",
                            "s3:ListBucket", "sqs:SendMessage", "sns:Publish"}),
    ("InferFunctionRole", {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:PutItem",
                           "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "s3:GetObject",
                           "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                           "sqs:GetQueueAttributes", "dynamodb:Query", "sqs:SendMessage", "s3:GetBucketLocation",
                           "sns:Publish", "s3:PutObject"}),
])
def test_each_function_role_grants_exactly_its_data_actions(role, expected):
    assert role_actions(translated(), role) - LOGGING == expected


def test_poll_writes_nothing_but_its_rate_limit_counter():
    statements = role_statements(translated(), "PollFunctionRole")
    writes = [s for s in statements if {"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                                        "sqs:SendMessage", "s3:PutObject"} & set(as_list(s["Action"]))]
    assert [(s["Action"], s["Resource"]) for s in writes] == [
        ("dynamodb:UpdateItem", {"Fn::GetAtt": ["RateLimitsTable", "Arn"]})]


def test_poll_reads_only_the_jobs_indexes_it_queries():
    statements = role_statements(translated(), "PollFunctionRole")
    query = [s for s in statements if "dynamodb:Query" in as_list(s["Action"])]
    assert {"Fn::Sub": "${JobsTable.Arn}/index/status-updated-index"} in query[0]["Resource"]
    assert {"Fn::Sub": "${JobsTable.Arn}/index/client-created-index"} in query[0]["Resource"]
    assert not any("ResultsTable" in str(s["Resource"]) and "dynamodb:Query" in s["Action"] for s in statements)


def test_object_access_is_scoped_to_prefixes():
    """Infer reads stored images and writes model inputs only; poll reads model inputs (heatmaps) only; submit may
    read only presigned uploads, never stored images, and delete uploads, stored images, model inputs and derived
    objects (DELETE /v1/jobs/{id} erases them)."""
    template = translated()
    infer = [s for s in role_statements(template, "InferFunctionRole") if "s3:GetObject" in as_list(s["Action"])]
    assert [s["Resource"] for s in infer] == [{"Fn::Sub": "${ImagesBucket.Arn}/images/*"}]
    writes = [s for s in role_statements(template, "InferFunctionRole") if "s3:PutObject" in as_list(s["Action"])]
    assert [s["Resource"] for s in writes] == [{"Fn::Sub": "${ImagesBucket.Arn}/model-inputs/*"}]
    poll = [s for s in role_statements(template, "PollFunctionRole") if "s3:GetObject" in as_list(s["Action"])]
    assert [s["Resource"] for s in poll] == [{"Fn::Sub": "${ImagesBucket.Arn}/model-inputs/*"}]  # never an image
    submit = role_statements(template, "SubmitFunctionRole")
    reads = [s for s in submit if "s3:GetObject" in as_list(s["Action"])]
    assert [s["Resource"] for s in reads] == [{"Fn::Sub": "${ImagesBucket.Arn}/uploads/*"}]
    deletes = [r for s in submit if "s3:DeleteObject" in as_list(s["Action"]) for r in as_list(s["Resource"])]
    assert sorted(d["Fn::Sub"] for d in deletes) == ["${ImagesBucket.Arn}/derived/*", "${ImagesBucket.Arn}/images/*",
                                                     "${ImagesBucket.Arn}/model-inputs/*",
                                                     "${ImagesBucket.Arn}/uploads/*"]


def test_logs_go_only_to_each_functions_own_group():
    for function in ("Submit", "Poll", "Infer"):
        statements = role_statements(translated(), f"{function}FunctionRole")
        logs = [r for s in statements if "logs:PutLogEvents" in as_list(s["Action"]) for r in as_list(s["Resource"])]
        audit = [{"Fn::GetAtt": ["AuditLogGroup", "Arn"]}] if function in ("Submit", "Poll") else []
        assert logs == [{"Fn::GetAtt": [f"{function}LogGroup", "Arn"]}] + audit


def test_tables_are_on_demand_with_ttl_pitr_and_the_shared_key_schemas():
    resources = raw()["Resources"]
    jobs, results = resources["JobsTable"]["Properties"], resources["ResultsTable"]["Properties"]
    for table in (jobs, results):
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert jobs["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert jobs["GlobalSecondaryIndexes"][0]["IndexName"] == "status-updated-index"
    assert jobs["GlobalSecondaryIndexes"][0]["KeySchema"] == [{"AttributeName": "status", "KeyType": "HASH"},
                                                              {"AttributeName": "updated_at", "KeyType": "RANGE"}]
    assert jobs["GlobalSecondaryIndexes"][1]["IndexName"] == "client-created-index"
    assert jobs["GlobalSecondaryIndexes"][1]["KeySchema"] == [{"AttributeName": "client_id", "KeyType": "HASH"},
                                                              {"AttributeName": "created_at", "KeyType": "RANGE"}]
    assert "result" not in jobs["GlobalSecondaryIndexes"][1]["Projection"]["NonKeyAttributes"]  # no scores listed
    assert results["KeySchema"] == [{"AttributeName": "cache_key", "KeyType": "HASH"}]


def test_client_data_survives_stack_deletion_and_replacement():
    resources = raw()["Resources"]
    for name in ("JobsTable", "ResultsTable", "ApiKeysTable", "ImagesBucket"):
        assert resources[name]["DeletionPolicy"] == "RetainExceptOnCreate", name
        assert resources[name]["UpdateReplacePolicy"] == "Retain", name


def test_bucket_is_encrypted_private_expiring_and_tls_only():
    resources = raw()["Resources"]
    bucket = resources["ImagesBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == {"Ref": "JobTtlDays"}
    policy = resources["ImagesBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ImagesBucket"}
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny[0]["Action"] == "s3:*" and deny[0]["Principal"] == "*"
    assert len(deny[0]["Resource"]) == 2  # the bucket and its objects


def test_visibility_timeout_is_at_least_six_infer_timeouts_for_every_allowed_timeout():
    template = raw()
    allowed = {str(value) for value in template["Parameters"]["InferTimeoutSeconds"]["AllowedValues"]}
    table = template["Mappings"]["InferTimeouts"]
    assert set(table) == allowed
    for timeout, row in table.items():
        assert row["VisibilityTimeout"] >= 6 * int(timeout)
        assert row["VisibilityTimeout"] <= 43200  # SQS maximum
    lookup = {"Fn::FindInMap": ["InferTimeouts", {"Ref": "InferTimeoutSeconds"}, "VisibilityTimeout"]}
    resources = template["Resources"]
    assert resources["JobsQueue"]["Properties"]["VisibilityTimeout"] == lookup
    assert template["Globals"]["Function"]["Environment"]["Variables"]["VISIBILITY_TIMEOUT_SECONDS"] == lookup
    assert resources["InferFunction"]["Properties"]["Timeout"] == {"Ref": "InferTimeoutSeconds"}


def test_queue_redrives_to_the_dead_letter_queue():
    resources = raw()["Resources"]
    redrive = resources["JobsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                       "maxReceiveCount": {"Ref": "MaxReceiveCount"}}
    assert resources["JobsDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600


def test_event_source_mapping_is_parameterised_and_reports_partial_failures():
    mapping = resources_of_type(translated(), "AWS::Lambda::EventSourceMapping")
    assert len(mapping) == 1
    props = next(iter(mapping.values()))["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert props["BatchSize"] == {"Ref": "InferBatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "InferBatchWindowSeconds"}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "InferMaxConcurrency"}}
    assert props["Enabled"] == {"Fn::If": ["UseEc2Workers", False, True]}


def test_api_is_throttled_by_parameters():
    stage = next(iter(resources_of_type(translated(), "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
                                             "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"}}


def test_alarms_watch_dead_letter_depth_and_queue_age():
    alarms = {spec["Properties"]["MetricName"]: spec["Properties"]
              for spec in resources_of_type(raw(), "AWS::CloudWatch::Alarm").values()}
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]}}]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    age = alarms["ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}]
    assert age["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}
    assert all(alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in (dlq, age))
    # every other alarm (the gateway's host checks) tells the operators too, beside its EC2 action
    assert all({"Ref": "AlarmTopic"} in alarm["AlarmActions"] for alarm in alarms.values())


def test_cors_is_off_by_default_and_allows_exactly_the_given_origin():
    from samtranslator.translator.transform import transform

    from .template_support import NoManagedPolicies, raw as fresh, with_s3_code_uris

    def cors(parameters: dict) -> dict:
        body = transform(with_s3_code_uris(fresh()), parameters, NoManagedPolicies())["Resources"]["HttpApi"]
        return body["Properties"]["Body"]["x-amazon-apigateway-cors"]

    assert raw()["Conditions"]["HasCorsOrigin"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowOrigin"}, ""]}]}
    condition, when_set, otherwise = cors({"CorsAllowOrigin": "https://viewer.example.org"})["Fn::If"]
    assert condition == "HasCorsOrigin" and otherwise == {"Ref": "AWS::NoValue"}
    assert when_set["allowOrigins"] == ["https://viewer.example.org"]
    assert {"content-type", "x-api-key"} <= set(when_set["allowHeaders"])


def test_operator_routes_sit_behind_the_iam_authorizer_and_client_routes_do_not():
    api = next(iter(resources_of_type(translated(), "AWS::Serverless::HttpApi").values()), None) or next(
        iter(resources_of_type(translated(), "AWS::ApiGatewayV2::Api").values()))
    paths = api["Properties"]["Body"]["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "x-amazon-apigateway-integration" not in operation:
                continue
            iam = {"AWS_IAM": []} in operation.get("security", [])
            assert iam == (path.startswith("/v1/ops/") and path != "/v1/ops/health"), (method, path, operation)


def test_job_events_are_published_by_submit_and_infer_only_and_subscribed_by_this_account_only():
    template = raw()
    for role in ("SubmitFunctionRole", "InferFunctionRole"):
        publish = [s for s in role_statements(translated(), role) if "sns:Publish" in as_list(s["Action"])]
        assert [s["Resource"] for s in publish] == [{"Ref": "JobEventsTopic"}], role
    assert not [s for s in role_statements(translated(), "PollFunctionRole") if "sns:Publish" in as_list(s["Action"])]
    policy = template["Resources"]["JobEventsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tenancy = next(s for s in policy if s["Sid"] == "OnlyThisAccountSubscribesOrReads")
    assert tenancy["Effect"] == "Deny" and "sns:Subscribe" in tenancy["Action"]
    assert tenancy["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
