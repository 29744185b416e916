"""The running stack as others see it: its ready file, credentials, and the `--env-vars` file of `sam local invoke`.

`python -m cxr_local env-json [-o env.json] [--docker-host HOST] [--credentials]` writes what `sam local invoke`
and `sam local start-api` need to reach this stack's tables, queues and bucket from their Docker containers.
SAM applies an env-vars value only to a variable the function declares in template.yaml (AWS_ENDPOINT_URL is
declared for this), and gives the container the credentials of its own AWS profile or environment, never ones
from the file: `--credentials` prints the stack's as shell exports for that.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .intrinsics import StackIdentity
from .template import StackTemplate

REGION = "us-east-1"
DEFAULT_CREDENTIALS = ("testing", "testing")  # moto's; a stack with its own identity names it in the ready file
DOCKER_HOST = "host.docker.internal"  # Docker Desktop; on Linux add `--add-host host.docker.internal:host-gateway`
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_ready_file(repo_root: Path) -> Path:
    return repo_root / ".cxr_local" / "ready.json"


def read_ready(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"no running local stack: {path} does not exist (start one with `python -m cxr_local`, "
                         f"or name its --ready-file)") from None


def stack_credentials(info: dict) -> tuple[str, str]:
    """The credentials the stack's AWS endpoint accepts: its own identity when it has one, else moto's defaults."""
    key, secret = info.get("aws_access_key_id"), info.get("aws_secret_access_key")
    return (key, secret) if key and secret else DEFAULT_CREDENTIALS


def stack_template(template_path: Path, params: dict[str, str], endpoint: str, account_id: str | None = None,
                   queue_url_base: str | None = None) -> StackTemplate:
    """template.yaml resolved as the stack on `endpoint` resolved it (same names, queue URLs on that endpoint)."""
    identity = StackIdentity(stack_name=f"cxr-{params.get('Stage', 'local')}", region=REGION,
                             queue_url_base=queue_url_base or endpoint,
                             **({"account_id": account_id} if account_id else {}))
    return StackTemplate(template_path, params, identity)


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def env_vars_document(template: StackTemplate, endpoint: str, reachable_endpoint: str | None = None) -> dict:
    """{"Parameters": {...}, "<FunctionLogicalId>": {...}}: each function's declared variables with this stack's
    values; every URL that names the stack's endpoint names `reachable_endpoint` instead (the Docker host)."""
    reachable_endpoint = reachable_endpoint or endpoint
    document: dict[str, dict[str, str]] = {"Parameters": {"AWS_ENDPOINT_URL": reachable_endpoint}}
    for logical_id, spec in sorted(template.functions().items()):
        document[logical_id] = {key: value.replace(endpoint, reachable_endpoint)
                                for key, value in sorted(spec.environment.items()) if key != "MODEL_DIR"}
        document[logical_id]["AWS_ENDPOINT_URL"] = reachable_endpoint
    return document


def document_for_stack(info: dict, template_path: Path, docker_host: str | None) -> dict:
    endpoint = info["moto_endpoint"]
    template = stack_template(template_path, info.get("params") or {}, endpoint, info.get("account_id"),
                              info.get("queue_url_base"))
    host = urlsplit(endpoint).hostname
    reachable = with_host(endpoint, docker_host) if docker_host and host in LOOPBACK + ("0.0.0.0",) else endpoint
    return env_vars_document(template, endpoint, reachable)


def write_json(document: dict, path: Path | None) -> None:
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    if path is None:
        sys.stdout.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)



def env_json_beside(ready_file: Path) -> Path:
    return ready_file.with_name("env.json")


def write_env_json_beside(info: dict, template_path: Path, ready_file: Path) -> Path:
    """sam's --env-vars file for the stack, next to its ready file (`python -m cxr_local env-json` writes the
    same); from Docker the endpoint is the Docker host, reachable when the stack listens on 0.0.0.0."""
    path = env_json_beside(ready_file)
    write_json(document_for_stack(info, template_path, DOCKER_HOST), path)
    return path

def main(argv: list[str], repo_root: Path) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxr_local env-json", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    parser.add_argument("--ready-file", type=Path, default=default_ready_file(repo_root),
                        help="the running stack's ready file (default: .cxr_local/ready.json)")
    parser.add_argument("--docker-host", default=DOCKER_HOST,
                        help=f"how a container reaches this machine (default {DOCKER_HOST}; Linux bridge: 172.17.0.1)")
    parser.add_argument("--credentials", action="store_true",
                        help="print the stack's credentials as shell exports instead (for `eval`, before sam)")
    parser.add_argument("--template", type=Path, default=repo_root / "template.yaml")
    args = parser.parse_args(argv)
    info = read_ready(args.ready_file)
    if args.credentials:
        key, secret = stack_credentials(info)
        print(f"export AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} AWS_DEFAULT_REGION={REGION}")
        return 0
    if urlsplit(info["moto_endpoint"]).hostname in LOOPBACK:
        print("warning: the stack listens on loopback only; a Docker container cannot reach it. Start it with "
              "`python -m cxr_local --host 0.0.0.0 --api-key <key>`.", file=sys.stderr)
    write_json(document_for_stack(info, args.template, args.docker_host), args.output)
    return 0
