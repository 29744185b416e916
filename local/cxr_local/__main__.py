"""`python -m cxr_local`: start the embedded local stack (no Docker) and run until Ctrl-C or SIGTERM.

Also `python -m cxr_local invoke <FunctionLogicalId> -e EVENT` (cxr_local.invoke) and
`python -m cxr_local env-json` (cxr_local.sam_env) against a running stack.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from . import gateway
from .stack import LocalStack, Options, say


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _find_repo_root() -> Path:
    for candidate in [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]]:
        if (candidate / "template.yaml").is_file() and (candidate / "functions").is_dir():
            return candidate
    raise SystemExit("cannot find the repository root (a folder with template.yaml and functions/)")


def parse_args(argv: list[str] | None = None) -> Options:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m cxr_local", description=__doc__)
    parser.add_argument("--host", default=env("CXR_LOCAL_HOST", "127.0.0.1"),
                        help="address for the API and moto (default 127.0.0.1: loopback only)")
    parser.add_argument("--port", type=int, default=int(env("CXR_LOCAL_PORT", "8080")),
                        help="API port (0: any free port; default 8080 or $CXR_LOCAL_PORT)")
    parser.add_argument("--moto-port", type=int, default=int(env("CXR_LOCAL_MOTO_PORT", "0")),
                        help="moto server port (default: a free port, or $CXR_LOCAL_MOTO_PORT)")
    parser.add_argument("--workers", type=int, default=int(env("CXR_LOCAL_WORKERS", str(os.cpu_count() or 1))),
                        help="infer processes (default: one per core, or $CXR_LOCAL_WORKERS; 0: none): EC2 worker "
                             "processes with --param InferPath=ec2, else the most concurrent infer Lambda environments")
    parser.add_argument("--worker-nice", type=int, default=int(env("CXR_LOCAL_WORKER_NICE", "10")),
                        help="CPU priority of the infer workers below the API and moto (nice steps, default 10; "
                             "0: equal), so inference on the same cores does not queue API requests")
    parser.add_argument("--no-build", action="store_true", help="do not run the model build before starting")
    parser.add_argument("--model-dir", type=Path, default=env("CXR_LOCAL_MODEL_DIR"),
                        help="model artifacts (default: <repo>/layers/model/weights, or $CXR_LOCAL_MODEL_DIR)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter override, e.g. --param InferBatchSize=4 (Stage defaults to local)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the handlers and workers, applied after the template's")
    parser.add_argument("--template", type=Path, default=None, help="default: <repo>/template.yaml")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="write a JSON {url, moto_endpoint, weights, ...} here once ready, and sam's env.json "
                             "next to it (both removed on stop; default .cxr_local/ready.json)")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="moto and worker logs go here (default: worker on the console, moto in a temp file)")
    parser.add_argument("--max-instances", type=int, default=2,
                        help="execution environments (processes) per HTTP function (default 2)")
    parser.add_argument("--max-waiting-polls", type=int, default=int(env("CXR_LOCAL_MAX_WAITING_POLLS", "8")),
                        help="long polls (GET /v1/jobs/{id}?wait=N) served at once, each in an environment of its own "
                             "(~60 MB, started on demand; default 8 or $CXR_LOCAL_MAX_WAITING_POLLS); more wait in line")
    parser.add_argument("--api-key", default=env("CXR_LOCAL_API_KEY"),
                        help="operator key registered when AuthMode=api_key (on loopback default: cxr_local_dev_key)")
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument("--aws-endpoint", default=env("CXR_LOCAL_AWS_ENDPOINT"), metavar="URL|localstack",
                        help="use this running AWS emulator instead of an embedded moto: creates the template's "
                             "resources there if missing (never on *.amazonaws.com); 'localstack' finds LocalStack "
                             "through localstack-client")
    parser.add_argument("--state-dir", type=Path, default=env("CXR_LOCAL_STATE_DIR"),
                        help="the embedded moto's state is saved here on a clean stop and restored at the next start "
                             "(default: a state/ folder beside the ready file)")
    parser.add_argument("--fresh", action="store_true",
                        help="start empty, ignoring the saved state (the next clean stop replaces it)")
    gateway.add_arguments(parser)
    args = parser.parse_args(argv)
    root = _find_repo_root()
    ready_file = args.ready_file or root / ".cxr_local" / "ready.json"
    return Options(repo_root=root, template=(args.template or root / "template.yaml").resolve(), host=args.host,
                   port=args.port, moto_port=args.moto_port, workers=args.workers, worker_nice=args.worker_nice,
                   build_model=not args.no_build,
                   params=_pairs(args.param, "--param"), env=_pairs(args.env, "--env"),
                   max_instances=args.max_instances, max_waiting_polls=args.max_waiting_polls,
                   access_log=args.access_log,
                   ready_file=ready_file, log_dir=args.log_dir, api_key=args.api_key, model_dir=args.model_dir,
                   aws_endpoint=args.aws_endpoint, state_dir=args.state_dir or ready_file.parent / "state",
                   fresh=args.fresh, gateway=gateway.options_from(args))


SUBCOMMANDS = ("invoke", "env-json")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        from . import invoke, sam_env
        return (invoke.main if argv[0] == "invoke" else sam_env.main)(argv[1:], _find_repo_root())
    logging.basicConfig(level=logging.INFO, format="[cxr_local] %(levelname)s %(name)s: %(message)s")
    options = parse_args(argv)
    stack = LocalStack(options)
    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        say(f"received {signal.Signals(signum).name}")
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack.start()
        say("press Ctrl-C to stop")
        while not stop_requested.wait(0.5):
            dead = stack.dead_part()
            if dead:  # serving 503 forever would hide it: stop loudly instead
                say(f"FATAL: {dead}. Stopping the stack.")
                return 3
        return 0
    except Exception as error:  # noqa: BLE001 - report, then still stop every child
        say(f"FAILED: {error}")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
