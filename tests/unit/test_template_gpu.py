"""GPU workers in template.yaml: instance types, the NVIDIA AMI through SSM, --gpus all, engine, batching, scaling."""
from __future__ import annotations

import pytest

from cxr_local.template import StackTemplate
from infra.worker_user_data import EC2_PARAMETERS, docker_run, render, worker_environment

from .template_support import TEMPLATE, raw

GPU_TYPES = ("g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g6.xlarge")


def _stack(instance_type: str) -> StackTemplate:
    return StackTemplate(TEMPLATE, {**EC2_PARAMETERS, "WorkerInstanceType": instance_type})


def test_gpu_instance_types_are_allowed_and_each_one_is_a_gpu_condition():
    parameter = raw()["Parameters"]["WorkerInstanceType"]
    assert parameter["Default"] == "c7i.large"
    assert set(GPU_TYPES) <= set(parameter["AllowedValues"])
    listed = {case["Fn::Equals"][1] for case in raw()["Conditions"]["WorkerIsGpu"]["Fn::Or"]}
    assert listed == {value for value in parameter["AllowedValues"] if value.startswith("g")}


def test_gpu_ami_resolves_the_ecs_gpu_optimized_ami_through_its_public_ssm_parameter():
    parameter = raw()["Parameters"]["WorkerGpuAmiId"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
    image = raw()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["ImageId"]
    assert image == {"Fn::If": ["WorkerIsGpu", {"Ref": "WorkerGpuAmiId"}, {"Ref": "WorkerAmiId"}]}


@pytest.mark.parametrize("instance_type", GPU_TYPES)
def test_a_gpu_worker_gets_the_gpus_the_cuda_engine_and_gpu_batching(instance_type):
    user_data = render({"WorkerInstanceType": instance_type})
    assert 'GPU_DEVICES="all"' in user_data and 'GPU_ARGS=(--gpus "$GPU_DEVICES")' in user_data
    assert "until nvidia-smi" in user_data
    command = docker_run(user_data)
    assert command[-2] == "${GPU_ARGS[@]}"  # quoted array expansion, right before the image
    env = worker_environment(user_data)
    defaults = raw()["Parameters"]
    assert env["MODEL_ENGINE"] == "torch-cuda" and env["MODEL_PRECISION"] == "fp32"
    assert env["INFER_BATCH_SIZE"] == str(defaults["WorkerGpuBatchSize"]["Default"]) == "64"
    assert env["INFER_BATCH_WINDOW_SECONDS"] == str(defaults["WorkerGpuBatchWindowSeconds"]["Default"])
    policy = _stack(instance_type).properties("WorkerBacklogScalingPolicy")
    assert str(policy["TargetTrackingConfiguration"]["TargetValue"]) == str(
        defaults["WorkerGpuTargetBacklogPerInstance"]["Default"])


def test_a_cpu_worker_is_unchanged_by_the_gpu_path():
    user_data = render({"WorkerInstanceType": "c7i.large"})
    assert 'GPU_DEVICES=""' in user_data
    env = worker_environment(user_data)
    defaults = raw()["Parameters"]
    assert env["MODEL_ENGINE"] == "onnxruntime"
    assert env["INFER_BATCH_SIZE"] == str(defaults["InferBatchSize"]["Default"])
    policy = _stack("c7i.large").properties("WorkerBacklogScalingPolicy")
    assert str(policy["TargetTrackingConfiguration"]["TargetValue"]) == str(
        defaults["WorkerTargetBacklogPerInstance"]["Default"])


def test_reduced_precision_is_opt_in_and_reaches_functions_and_workers_alike():
    parameter = raw()["Parameters"]["ModelPrecision"]
    assert parameter["Default"] == "fp32" and set(parameter["AllowedValues"]) == {"fp32", "bf16", "fp16"}
    env = worker_environment(render({"WorkerInstanceType": "g5.xlarge", "ModelPrecision": "fp16"}))
    assert env["MODEL_PRECISION"] == "fp16"  # submit/poll and the worker compute one cache key
    assert raw()["Globals"]["Function"]["Environment"]["Variables"]["MODEL_PRECISION"] == {"Ref": "ModelPrecision"}


def test_reduced_precision_is_refused_by_a_rule_unless_gpu_workers_consume_the_queue():
    rule = raw()["Rules"]["ReducedPrecisionNeedsGpuWorkers"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPrecision"}, "fp32"]}]}
    first, second = rule["Assertions"]
    assert first["Assert"] == {"Fn::Equals": [{"Ref": "InferPath"}, "ec2"]}
    listed, chosen = second["Assert"]["Fn::Contains"]
    assert chosen == {"Ref": "WorkerInstanceType"}
    assert set(listed) == {case["Fn::Equals"][1] for case in raw()["Conditions"]["WorkerIsGpu"]["Fn::Or"]}
