"""`python -m cxr_local invoke <FunctionLogicalId> -e EVENT [--env-vars env.json]`: `sam local invoke` without Docker.

The function is read from template.yaml (handler, CodeUri, layers, Globals + its environment, timeout, memory) and
run once in a fresh execution-environment process (cxr_local.lambdas) whose environment is only what the template,
the Lambda runtime and the env-vars file give it, against the running local stack's AWS endpoint (its ready file)
or --endpoint. Like SAM: the handler's logs go to stderr, the response (or the error document) to stdout; unlike
SAM, an unhandled error or a timeout exits 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from .lambdas import LambdaError, _Sandbox
from .sam_env import REGION, default_ready_file, read_ready, stack_credentials, stack_template

RUNTIME = "python3.12"
KEPT_FROM_SHELL = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")


def local_layer(content_uri: str, repo_root: Path) -> Path:
    """A layer's ContentUri (build/layers/<name>/, what infra/build_layers.py makes) -> the source it is built from."""
    source = repo_root / "layers" / Path(content_uri.rstrip("/")).name / "python"
    if not source.is_dir():
        raise SystemExit(f"layer {content_uri}: no local source at {source}")
    return source


def function_environment(spec, endpoint: str, credentials: tuple[str, str], env_vars: dict, repo_root: Path,
                         layer_paths: list[Path], model_dir: str | None = None) -> dict[str, str]:
    """What the sandbox sees: Lambda's own variables, the template's, then env-vars overrides of declared names.
    model_dir: the running stack's model folder (its ready file says), else the model layer's /opt/weights here."""
    declared = dict(spec.environment)
    declared.update({"AWS_ENDPOINT_URL": endpoint,
                     "MODEL_DIR": model_dir or str(repo_root / "layers" / "model" / "weights")})
    for scope in ("Parameters", spec.logical_id):  # as SAM: only names the function declares are overridden
        declared.update({key: str(value) for key, value in (env_vars.get(scope) or {}).items()
                         if key in spec.environment or key == "AWS_ENDPOINT_URL"})
    return {
        **{key: os.environ[key] for key in KEPT_FROM_SHELL if key in os.environ},
        "AWS_SAM_LOCAL": "true", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1],
        "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s), "AWS_LAMBDA_FUNCTION_HANDLER": spec.handler,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "PYTHONPATH": os.pathsep.join(map(str, [*layer_paths, repo_root])),
        **declared,
    }


def error_document(detail: str, request_id: str) -> dict:
    """Lambda's error response shape from the sandbox's traceback text."""
    lines = detail.strip().splitlines()
    last = lines[-1] if lines else "Error"
    error_type, _, message = last.partition(": ")
    return {"errorMessage": message or last, "errorType": error_type.rsplit(".", 1)[-1] if message else "Error",
            "requestId": request_id, "stackTrace": lines[1:-1]}


def parse_args(argv: list[str], repo_root: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cxr_local invoke", description=__doc__.splitlines()[0])
    parser.add_argument("function", help="logical id in template.yaml, e.g. SubmitFunction")
    parser.add_argument("-e", "--event", required=True, help="event JSON file ('-': stdin)")
    parser.add_argument("-n", "--env-vars", type=Path, help="sam's env-vars JSON ({Parameters|<FunctionId>: {...}})")
    parser.add_argument("--ready-file", type=Path, default=default_ready_file(repo_root),
                        help="the running stack's ready file (default .cxr_local/ready.json)")
    parser.add_argument("--endpoint", help="AWS endpoint to use instead of the running stack's")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter (with --endpoint; a running stack's own are used otherwise)")
    parser.add_argument("--template", type=Path, default=repo_root / "template.yaml")
    return parser.parse_args(argv)


def main(argv: list[str], repo_root: Path) -> int:
    args = parse_args(argv, repo_root)
    event = json.load(sys.stdin if args.event == "-" else open(args.event))  # noqa: SIM115
    if args.endpoint:
        info = {"moto_endpoint": args.endpoint, "params": dict(item.split("=", 1) for item in args.param)}
    else:
        info = read_ready(args.ready_file)
    endpoint = info["moto_endpoint"]
    template = stack_template(args.template, info.get("params") or {}, endpoint, info.get("account_id"),
                              info.get("queue_url_base"))
    functions = template.functions()
    if args.function not in functions:
        raise SystemExit(f"{args.function} is not a function of {args.template.name}: {', '.join(sorted(functions))}")
    spec = functions[args.function]
    layers = [local_layer(uri, repo_root) for uri in template.function_layers(args.function).values()]
    env_vars = json.loads(args.env_vars.read_text()) if args.env_vars else {}
    environment = function_environment(spec, endpoint, stack_credentials(info), env_vars, repo_root, layers,
                                       info.get("model_dir"))
    spec = replace(spec, environment=environment)

    response_fd = os.dup(1)
    os.dup2(2, 1)  # the sandbox's prints (logs) go to stderr; stdout carries only the response, as with SAM
    os.environ.clear()
    os.environ.update(environment)  # a fresh process that inherits nothing else from this shell
    request_id = str(uuid.uuid4())
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say(f"Invoking {spec.handler} ({RUNTIME}) {args.function}: {spec.code_dir}, layers "
        f"{', '.join(template.function_layers(args.function)) or 'none'}, endpoint {endpoint}")
    started = time.monotonic()
    sandbox = None
    try:
        sandbox = _Sandbox(spec, REGION, template.resolver.identity.account_id)
        init_ms = (time.monotonic() - started) * 1000
        say(f"START RequestId: {request_id} Version: $LATEST")
        began = time.monotonic()
        try:
            response, failed = sandbox.invoke(event, request_id, spec.timeout_s), False
        except LambdaError as error:
            response, failed = (error_document(str(error), request_id), True)
            if error.timed_out:
                response = {"errorMessage": str(error), "errorType": "Sandbox.Timedout", "requestId": request_id}
        duration_ms = (time.monotonic() - began) * 1000
        say(f"END RequestId: {request_id}")
        say(f"REPORT RequestId: {request_id}\tInit Duration: {init_ms:.2f} ms\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {spec.memory_mb} MB\t"
            f"Max Memory Used: {_peak_mb(sandbox.process.pid)} MB")
    except LambdaError as error:  # the handler's module failed to import (init error)
        response, failed = error_document(str(error), request_id), True
    finally:
        if sandbox is not None:
            sandbox.close()
    os.write(response_fd, (json.dumps(response) + "\n").encode())
    return 1 if failed else 0


def _peak_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0
