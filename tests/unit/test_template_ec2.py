"""The EC2 worker fleet in template.yaml: switched by InferPath, scaling on backlog per instance, same settings."""
from __future__ import annotations

import re

import pytest

from cxr_local.template import StackTemplate
from infra.worker_user_data import EC2_PARAMETERS, docker_run, render, worker_environment, written_files

from .template_support import TEMPLATE, as_list, raw, role_actions, role_statements, translated

FLEET = ("WorkerLogGroup", "WorkerSecurityGroup", "WorkerInstanceRole", "WorkerInstanceProfile",
         "WorkerLaunchTemplate", "WorkerGroup", "WorkerBacklogScalingPolicy")
# Settings the worker image fixes on purpose: its own weights path.
IMAGE_FIXED = {"MODEL_DIR": "/opt/weights"}
# Settings the instance type decides (GPU instance types: the GPU image's engine, bigger batches): variable -> If
BY_INSTANCE_TYPE = {"MODEL_ENGINE": ["torch-cuda", "onnxruntime"],
                    "INFER_BATCH_SIZE": [{"Ref": "WorkerGpuBatchSize"}, {"Ref": "InferBatchSize"}],
                    "INFER_BATCH_WINDOW_SECONDS": [{"Ref": "WorkerGpuBatchWindowSeconds"},
                                                   {"Ref": "InferBatchWindowSeconds"}]}


def user_data_env() -> tuple[dict[str, str], dict]:
    text, variables = raw()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"][
        "Fn::Base64"]["Fn::Sub"]
    block = text.split("<<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    return dict(line.split("=", 1) for line in block.splitlines()), variables


def test_fleet_exists_only_with_ec2_workers_and_the_repository_always():
    resources = raw()["Resources"]
    assert raw()["Conditions"]["UseEc2Workers"] == {"Fn::Equals": [{"Ref": "InferPath"}, "ec2"]}
    for name in FLEET:
        assert resources[name]["Condition"] == "UseEc2Workers", name
    assert "Condition" not in resources["WorkerRepository"]  # push an image before switching


@pytest.mark.parametrize("path, mapping_enabled, schedule_state, fleet", [
    ("lambda", True, "ENABLED", False), ("ec2", False, "DISABLED", True)])
def test_infer_path_switches_the_consumer(path, mapping_enabled, schedule_state, fleet):
    params = {"InferPath": path, "WorkerImageTag": "abc123", "WorkerVpcId": "vpc-0123456789abcdef0",
              "WorkerSubnetIds": "subnet-0123456789abcdef0"}
    stack = StackTemplate(TEMPLATE, params)
    events = stack.resolver.resolve(stack.raw["Resources"]["InferFunction"]["Properties"]["Events"])
    assert events["JobsQueueEvent"]["Properties"]["Enabled"] is mapping_enabled
    assert events["RecoverySchedule"]["Properties"]["State"] == schedule_state
    assert bool(stack.logical_ids("AWS::AutoScaling::AutoScalingGroup")) is fleet


def test_ec2_path_demands_image_and_network_parameters():
    rule = raw()["Rules"]["Ec2WorkersNeedImageAndNetwork"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "InferPath"}, "ec2"]}
    asserted = str(rule["Assertions"])
    assert all(name in asserted for name in ("WorkerImageTag", "WorkerVpcId", "WorkerSubnetIds"))


def test_scaling_tracks_queue_backlog_per_in_service_instance():
    resources = raw()["Resources"]
    config = resources["WorkerBacklogScalingPolicy"]["Properties"]
    assert config["PolicyType"] == "TargetTrackingScaling"
    tracking = config["TargetTrackingConfiguration"]
    assert tracking["TargetValue"] == {"Fn::If": ["WorkerIsGpu", {"Ref": "WorkerGpuTargetBacklogPerInstance"},
                                                  {"Ref": "WorkerTargetBacklogPerInstance"}]}
    metrics = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    queued = metrics["queued"]["MetricStat"]["Metric"]
    instances = metrics["instances"]["MetricStat"]["Metric"]
    assert (queued["Namespace"], queued["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert queued["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}]
    assert (instances["Namespace"], instances["MetricName"]) == ("AWS/AutoScaling", "GroupInServiceInstances")
    assert instances["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": {"Ref": "WorkerGroup"}}]
    assert metrics["backlog_per_instance"]["Expression"] == "queued / instances"
    assert [m["Id"] for m in metrics.values() if m["ReturnData"]] == ["backlog_per_instance"]
    group = resources["WorkerGroup"]["Properties"]
    assert "GroupInServiceInstances" in group["MetricsCollection"][0]["Metrics"]
    assert raw()["Parameters"]["WorkerTargetBacklogPerInstance"]["Default"] == 100


def test_instances_need_imdsv2_and_accept_no_inbound_traffic():
    data = raw()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(device["Ebs"]["Encrypted"] for device in data["BlockDeviceMappings"])
    group = raw()["Resources"]["WorkerSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert [(rule["FromPort"], rule["ToPort"]) for rule in group["SecurityGroupEgress"]] == [(443, 443)]


def test_instance_role_has_the_infer_data_policy_plus_image_pull_and_its_log_group():
    template = translated()
    assert role_actions(template, "WorkerInstanceRole") == role_actions(template, "InferFunctionRole") - {
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"} | {
        "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability", "logs:CreateLogStream", "logs:PutLogEvents",
        "autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"}
    pulls = [s for s in role_statements(template, "WorkerInstanceRole") if "ecr:BatchGetImage" in as_list(s["Action"])]
    assert pulls[0]["Resource"] == {"Fn::GetAtt": ["WorkerRepository", "Arn"]}
    trust = template["Resources"]["WorkerInstanceRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_worker_container_gets_every_setting_the_functions_get():
    env, variables = user_data_env()
    globals_env = raw()["Globals"]["Function"]["Environment"]["Variables"]
    globals_env.pop("AWS_ENDPOINT_URL")  # development emulators only; absent on AWS (tested below)
    assert set(globals_env) <= set(env)
    for key, value in globals_env.items():
        if key in IMAGE_FIXED:
            assert env[key] == IMAGE_FIXED[key]
        elif key in BY_INSTANCE_TYPE:
            name = re.fullmatch(r"\$\{(\w+)\}", env[key]).group(1)
            assert variables[name] == {"Fn::If": ["WorkerIsGpu", *BY_INSTANCE_TYPE[key]]}, key
        elif isinstance(value, dict) and "Ref" in value:
            assert env[key] == "${%s}" % value["Ref"], key
        elif isinstance(value, dict) and "Fn::FindInMap" in value:
            name = re.fullmatch(r"\$\{(\w+)\}", env[key]).group(1)
            assert variables[name] == value, key
        else:
            assert env[key] == str(value), key


def test_worker_runs_the_repository_image_at_the_given_tag():
    text, variables = raw()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"][
        "Fn::Base64"]["Fn::Sub"]
    assert "docker run" in text and "--env-file /etc/cxr-worker.env" in text
    assert docker_run(text)[-1] == "${Image}"
    assert variables["Image"] == {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/"
                                             "${WorkerRepository}:${WorkerImageTag}"}
    assert raw()["Resources"]["WorkerRepository"]["Properties"]["ImageTagMutability"] == "IMMUTABLE"


def test_scale_in_waits_for_the_drain_through_a_termination_lifecycle_hook():
    group = raw()["Resources"]["WorkerGroup"]["Properties"]
    [hook] = group["LifecycleHookSpecificationList"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"  # a worker that never answers still lets the instance go
    # as long as a batch may hold its messages: the visibility timeout (6x the infer timeout)
    assert hook["HeartbeatTimeout"] == {"Fn::FindInMap": ["InferTimeouts", {"Ref": "InferTimeoutSeconds"},
                                                          "VisibilityTimeout"]}
    env = worker_environment(render())
    assert env["WORKER_LIFECYCLE_HOOK"] == hook["LifecycleHookName"]
    stack = StackTemplate(TEMPLATE, EC2_PARAMETERS)
    assert env["WORKER_GROUP_NAME"] == stack.resolver.resolve(group["AutoScalingGroupName"]) == "cxr-dev-workers"


def test_instance_role_may_complete_the_hook_and_report_health_of_its_own_group_only():
    template = translated()
    statements = [s for s in role_statements(template, "WorkerInstanceRole")
                  if any(a.startswith("autoscaling:") for a in as_list(s["Action"]))]
    assert [sorted(as_list(s["Action"])) for s in statements] == [
        ["autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"]]
    arn = StackTemplate(TEMPLATE, EC2_PARAMETERS).resolver.resolve(statements[0]["Resource"])
    assert arn.endswith(":autoScalingGroup:*:autoScalingGroupName/cxr-dev-workers")


def test_host_reports_an_unhealthy_container_to_the_group_and_restarts_only_failures():
    user_data = render()
    reporter = written_files(user_data)["/usr/local/bin/cxr-worker-health"]
    assert "aws autoscaling set-instance-health" in reporter and "--health-status Unhealthy" in reporter
    assert "{{.State.Health.Status}}" in reporter and '[ "$health" = unhealthy ]' in reporter
    assert "systemctl enable --now cxr-worker-health.service" in user_data
    command = docker_run(user_data)
    assert command[command.index("--restart") + 1] == "on-failure"  # exit 0 after a drain is final
    assert raw()["Resources"]["WorkerGroup"]["Properties"]["HealthCheckGracePeriod"] >= 90  # the HEALTHCHECK's start


@pytest.mark.parametrize("instance_type, credits", [("t3.large", {"CpuCredits": "unlimited"}),
                                                    ("c7i.large", None)])
def test_t3_workers_launch_unlimited_and_c7i_large_is_the_default(instance_type, credits):
    parameter = raw()["Parameters"]["WorkerInstanceType"]
    assert parameter["Default"] == "c7i.large" and "t3.large" in parameter["AllowedValues"]
    stack = StackTemplate(TEMPLATE, {**EC2_PARAMETERS, "WorkerInstanceType": instance_type})
    data = stack.properties("WorkerLaunchTemplate")["LaunchTemplateData"]
    assert data["InstanceType"] == instance_type
    assert data.get("CreditSpecification") == credits


def test_aws_endpoint_url_is_declared_for_sam_local_but_absent_on_aws():
    assert "AWS_ENDPOINT_URL" not in StackTemplate(TEMPLATE, {}).function("SubmitFunction").environment
    local = StackTemplate(TEMPLATE, {"AwsEndpointUrl": "http://host.docker.internal:5000"})
    assert local.function("InferFunction").environment["AWS_ENDPOINT_URL"] == "http://host.docker.internal:5000"
