"""The EC2 worker's user data as CloudFormation renders it from template.yaml's !Sub, and the parts a host runs.

`python infra/worker_user_data.py [--param Name=Value ...]` prints the script (Stage=dev, made-up image tag and
network by default); tests lint it with shellcheck and run its worker command locally.
"""
from __future__ import annotations

import argparse
import base64
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EC2_PARAMETERS = {"Stage": "dev", "InferPath": "ec2", "WorkerImageTag": "0123abc", "WorkerVpcId": "vpc-0123456789abcdef0",
                  "WorkerSubnetIds": "subnet-0123456789abcdef0"}
_HEREDOC = re.compile(r"cat > (\S+) <<'EOF'\n(.*?)\nEOF\n", re.S)


def render(params: dict[str, str] | None = None, identity=None, template: Path = REPO / "template.yaml") -> str:
    """The launch template's user data, every ${...} substituted as CloudFormation would (Fn::Base64 undone)."""
    sys.path.insert(0, str(REPO / "local"))
    from cxr_local.template import StackTemplate

    stack = StackTemplate(template, {**EC2_PARAMETERS, **(params or {})}, identity)
    data = stack.properties("WorkerLaunchTemplate")["LaunchTemplateData"]["UserData"]
    return base64.b64decode(data).decode()


def written_files(user_data: str) -> dict[str, str]:
    """The files the script writes with `cat > PATH <<'EOF'` (env file, health reporter, systemd unit)."""
    return {path: body + "\n" for path, body in _HEREDOC.findall(user_data)}


def worker_environment(user_data: str) -> dict[str, str]:
    """The container's --env-file, as the script writes it."""
    text = written_files(user_data)["/etc/cxr-worker.env"]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def docker_run(user_data: str) -> list[str]:
    """The `docker run ...` command line that starts the worker container, split as the shell would."""
    joined = user_data.replace("\\\n", " ")
    line = next(line for line in joined.splitlines() if line.lstrip().startswith("docker run "))
    return shlex.split(line)


def image_command(dockerfile: Path = REPO / "Dockerfile") -> list[str]:
    """The image's CMD (exec form): what `docker run IMAGE` runs inside the container."""
    import json

    line = next(line for line in dockerfile.read_text().splitlines() if line.startswith("CMD "))
    return json.loads(line[len("CMD "):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    print(render(dict(item.split("=", 1) for item in args.param)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
