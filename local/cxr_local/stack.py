"""The embedded local stack: model artifacts, moto, template resources, the API adapter and infer workers."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import boto3

from . import processes
from .apigw import Cors, Router
from .http_api import ApiServer
from .infer_lambda import start_infer_lambda
from .intrinsics import StackIdentity
from .lambdas import FunctionPool
from .resources import create_stack_resources
from .sigv4_guard import ACCESS_KEY_ENV, SECRET_KEY_ENV, Identity
from .template import StackTemplate
from .report import announce, say
from .external import ExternalEndpoint
from .sam_env import DOCKER_HOST, document_for_stack, write_json
from .weights import weights_status
from .workers import InferWorkers

READY_TIMEOUT_S = 60.0

REGION = "us-east-1"
LONG_POLL_ROUTE = "GET /v1/jobs/{id}"
LOCAL_DEV_API_KEY = "cxr_local_dev_key"  # only on loopback; any other --host gets a random key unless --api-key
LOCAL_AWS_ENV = {
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
}


def stack_aws_env(identity: Identity) -> dict[str, str]:
    """LOCAL_AWS_ENV plus the stack's own AWS identity: the only one its moto endpoint accepts."""
    return {**LOCAL_AWS_ENV, "AWS_ACCESS_KEY_ID": identity.access_key_id,
            "AWS_SECRET_ACCESS_KEY": identity.secret_access_key}


@dataclass
class Options:
    repo_root: Path
    template: Path
    host: str = "127.0.0.1"
    port: int = 8080
    moto_port: int = 0  # 0: a free port
    workers: int = os.cpu_count() or 1  # infer worker processes; 0 = none
    # On AWS the API and the workers never share a CPU; here they do, and a forward pass that holds a core for
    # tens of ms would queue every API request behind it. Workers run this many nice steps lower.
    worker_nice: int = 10
    build_model: bool = True
    params: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    max_instances: int = 2  # execution environments (processes) per HTTP function, as Lambda's concurrency
    # GET /v1/jobs/{id}?wait=N holds an environment for up to N s: such polls get a pool of their own, so they
    # never queue submits or plain polls (on AWS: the poll function's reserved concurrency)
    max_waiting_polls: int = 8
    ready_file: Path | None = None
    access_log: bool = False
    log_dir: Path | None = None
    api_key: str | None = None  # the operator key registered when AuthMode=api_key
    model_dir: Path | None = None  # default: <repo>/layers/model/weights (the tests use a stand-in folder of their own)
    aws_endpoint: str | None = None  # an emulator already running (LocalStack, moto): no embedded moto


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.moto: subprocess.Popen | None = None
        self.worker: InferWorkers | None = None
        self.infer_mapping = None  # InferPath=lambda: the emulated SQS event source mapping (infer_lambda.py)
        self.server: ApiServer | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.waiting_pools: dict[str, FunctionPool] = {}  # started lazily: one environment per waiting poll
        self.stopping = threading.Event()
        self._logs: list = []
        self.info: dict = {}
        self.identity = Identity.new()  # per run: clients never see it, tools read it from the ready file

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> dict:
        started = time.monotonic()
        phases: dict[str, float] = {}

        def mark(phase: str) -> None:
            phases[phase] = round(time.monotonic() - started, 3)

        opts = self.options
        external = ExternalEndpoint(opts.aws_endpoint, REGION) if opts.aws_endpoint else None
        if external:
            moto_endpoint = external.endpoint
            aws_env = {**LOCAL_AWS_ENV, **external.credentials_env}
        else:
            moto_port = opts.moto_port or processes.free_port(opts.host)
            moto_endpoint = f"http://{opts.host}:{moto_port}"
            aws_env = stack_aws_env(self.identity)
        base_env = {**os.environ, **aws_env, "AWS_ENDPOINT_URL": moto_endpoint}
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(opts.repo_root), os.environ.get("PYTHONPATH")]))
        if not external:
            self.moto = processes.start_moto(opts.host, moto_port,
                                             env={**base_env, ACCESS_KEY_ENV: self.identity.access_key_id,
                                                  SECRET_KEY_ENV: self.identity.secret_access_key},
                                             cwd=opts.repo_root, log=self._log_file("moto", default_to_file=True))
        build = self._start_model_build(base_env)

        identity = external.identity(opts.params) if external else StackIdentity(
            stack_name=f"cxr-{opts.params.get('Stage', 'local')}", region=REGION, queue_url_base=moto_endpoint)
        template = StackTemplate(opts.template, opts.params, identity)
        model_dir = str(self._model_dir())
        functions = template.functions()
        routes = template.http_routes()
        http_env = _merged_environment([functions[name].environment for name in {r.function for r in routes}])
        os.environ.update({**aws_env, "AWS_ENDPOINT_URL": moto_endpoint, **http_env, "MODEL_DIR": model_dir,
                           **opts.env})
        # the functions' init (imports) overlaps moto's start and the model build; they touch AWS only per event
        local_overrides = {**aws_env, "AWS_ENDPOINT_URL": moto_endpoint, "MODEL_DIR": model_dir, **opts.env}
        self.pools = {name: FunctionPool(replace(functions[name],
                                                 environment={**functions[name].environment, **local_overrides}),
                                         opts.max_instances, REGION, template.resolver.identity.account_id)
                      for name in sorted({route.function for route in routes})}
        self.waiting_pools = {route.function: FunctionPool(self.pools[route.function].spec, opts.max_waiting_polls,
                                                           REGION, template.resolver.identity.account_id)
                              for route in routes if route.route_key == LONG_POLL_ROUTE}
        warming = [threading.Thread(target=pool.warm) for pool in self.pools.values()]
        for thread in warming:
            thread.start()

        if external:
            created = external.ensure_resources(template)
        else:
            processes.wait_for_http(f"{moto_endpoint}/moto-api/", self.moto, timeout_s=60)
            mark("moto_up")
            session = boto3.session.Session(region_name=REGION, aws_access_key_id=self.identity.access_key_id,
                                            aws_secret_access_key=self.identity.secret_access_key)
            created = _with_endpoint(session, moto_endpoint, lambda s: create_stack_resources(template, s))
            say(f"moto server {moto_endpoint}: created {_summary(created)} from {opts.template.name}")

        mark("resources_created")
        api_key = self._mint_api_key(template)
        if build is not None:
            if build.wait() != 0:
                raise RuntimeError(f"model build failed with exit code {build.returncode} (see its output above)")
        mark("model_build_done")
        weights = weights_status(model_dir)

        infer = functions.get("InferFunction")
        if opts.workers > 0 and infer is not None:
            sqs = (external.session.client("sqs") if external  # --aws-endpoint: that emulator's credentials
                   else _with_endpoint(session, moto_endpoint, lambda s: s.client("sqs")))
            self.infer_mapping = start_infer_lambda(
                template, infer, sqs,
                max_local=opts.workers, region=REGION, overrides=local_overrides, say=say, nice=opts.worker_nice)
        if opts.workers > 0 and infer is not None and self.infer_mapping is None:  # InferPath=ec2
            worker_env = {**base_env, **infer.environment, "MODEL_DIR": model_dir,
                          "WORKER_PROCESSES": str(opts.workers), **opts.env}
            self.worker = InferWorkers(worker_env, opts.repo_root, lambda: self._log_file("worker"), say,
                                       nice=opts.worker_nice)
            self.worker.start()

        for thread in warming:
            thread.join()
        mark("functions_warm")
        for name, pool in self.pools.items():
            if pool.init_error:
                raise RuntimeError(f"{name} could not start: {pool.init_error}")
        api_id = str(template.resolver.ref("HttpApi")) if "HttpApi" in template.resolver.resources else "local"
        try:
            self.server = ApiServer((opts.host, opts.port), Router(routes),
                                    lambda name, event, request_id: self._pool(name, event).invoke(event, request_id),
                                    stage=template.parameters.get("Stage", "local"),
                                    static_root=opts.repo_root / "clients" / "web", api_id=api_id,
                                    account_id=template.resolver.identity.account_id, access_log=opts.access_log,
                                    cors=Cors.from_template(template.http_api_cors()))
        except OSError as error:
            raise RuntimeError(f"cannot listen on {opts.host}:{opts.port}: {error} (choose another: --port)") from error
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        url = f"http://{opts.host}:{self.server.server_address[1]}"
        headers = {"x-api-key": api_key} if api_key else {}
        health = _get_status(f"{url}/v1/ops/health", headers)
        ready = _wait_ready(f"{url}/v1/ops/ready", headers)
        mark("ready")
        self.info = {**self.info, "url": url, "api_key": api_key, "moto_endpoint": moto_endpoint,
                     "aws_region": REGION, "aws_access_key_id": self.identity.access_key_id,
                     "aws_secret_access_key": self.identity.secret_access_key,
                     "aws_env": {**{key: value for key, value in http_env.items() if key.endswith(("_TABLE", "_BUCKET",
                                                                                                   "_URL"))},
                                 **aws_env, "AWS_ENDPOINT_URL": moto_endpoint},
                     "pid": os.getpid(), "weights": weights, "model_dir": model_dir,
                     "workers": opts.workers if (self.worker or self.infer_mapping) else 0, "health_status": health,
                     "ready_status": ready, "infer_path": str(template.parameters.get("InferPath", "")),
                     "ready_seconds": round(time.monotonic() - started, 3), "phases_s": phases, "resources": created,
                     "routes": [route.route_key for route in routes],
                     "params": dict(opts.params), "account_id": template.resolver.identity.account_id,
                     "queue_url_base": template.resolver.identity.queue_url_base,
                     "external_endpoint": bool(external),
                     "events_topic_arn": created.get("topics", {}).get("JobEventsTopic")}
        if external:
            self.info.update(external.ready_info())
        self._write_env_json(template)
        announce(self.info, self.options.ready_file)
        return self.info

    def _write_env_json(self, template: StackTemplate) -> None:
        """sam's --env-vars file for this stack, next to the ready file (`python -m cxr_local env-json` writes the
        same); from Docker the endpoint is the Docker host, reachable when the stack listens on 0.0.0.0."""
        if self.options.ready_file is None:
            return
        path = self.options.ready_file.with_name("env.json")
        write_json(document_for_stack(self.info, self.options.template, DOCKER_HOST), path)
        self.info["env_json"] = str(path)
        say(f"sam local invoke --env-vars {path} (see docs/deploy.md)")

    def _pool(self, function: str, event: dict) -> FunctionPool:
        waiting = event.get("routeKey") == LONG_POLL_ROUTE and "wait" in (event.get("queryStringParameters") or {})
        return self.waiting_pools[function] if waiting and function in self.waiting_pools else self.pools[function]

    def _mint_api_key(self, template: StackTemplate) -> str | None:
        """With AuthMode=api_key every route wants an X-Api-Key: register one operator key for local use."""
        if str(template.parameters.get("AuthMode", "none")) != "api_key":
            return None
        from cxr_core.auth import ApiKeyStore  # after the environment is set: its tables are named from it

        api_key = self.options.api_key or (LOCAL_DEV_API_KEY if self.options.host in ("127.0.0.1", "localhost")
                                           else None)
        return ApiKeyStore.create("local-dev", label="cxr_local", api_key=api_key, operator=True)

    def _model_dir(self) -> Path:
        return (self.options.model_dir or self.options.repo_root / "layers" / "model" / "weights").resolve()

    def _start_model_build(self, env: dict[str, str]) -> subprocess.Popen | None:
        if not self.options.build_model:
            return None
        command = [sys.executable, "-m", "cxr_model.build", "--model-dir", str(self._model_dir()),
                   "--allow-random-init"]
        say("model artifacts: " + " ".join(command[1:]))
        return processes.spawn(command, env=env, cwd=self.options.repo_root, log=None)

    def _log_file(self, name: str, default_to_file: bool = False):
        log_dir = self.options.log_dir
        if log_dir is None:
            if not default_to_file:
                return None
            log_dir = Path(tempfile.gettempdir()) / f"cxr_local-{os.getpid()}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.info.setdefault("logs", {})[name] = str(log_dir / f"{name}.log")
        handle = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(handle)
        return handle

    # ---- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        """The API stops taking requests; the workers finish the batch in hand (SIGTERM) while the requests in hand
        are answered; only then do the function processes stop, and moto last."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        say("stopping: API (new requests refused), infer workers and requests in hand drain, functions, moto")
        if self.server is not None:
            self.server.stop_accepting()
        if self.worker is not None:
            self.worker.stop(grace_s=30)
        if self.infer_mapping is not None:
            self.infer_mapping.stop(grace_s=30)  # the batches in flight finish and settle
            if self.options.log_dir is not None:
                self.infer_mapping.write_stats(self.options.log_dir / "infer-mapping.json")
        if self.server is not None:
            if not self.server.drain(timeout_s=max(pool.spec.timeout_s for pool in self.pools.values()) + 5
                                     if self.pools else 5):
                say("WARNING: requests still in hand after their functions' timeout; stopping anyway")
            self.server.server_close()
        for pool in [*self.pools.values(), *self.waiting_pools.values()]:
            pool.close()
        processes.stop(self.moto, grace_s=5)
        for handle in self._logs:
            handle.close()
        if self.options.ready_file:
            self.options.ready_file.unlink(missing_ok=True)
            self.options.ready_file.with_name("env.json").unlink(missing_ok=True)
        say("stopped")


def _merged_environment(environments: list[dict[str, str]]) -> dict[str, str]:
    """The union of the HTTP functions' settings, for this process's own cxr_core use (API key registration);
    each function's sandbox gets exactly its own environment."""
    merged: dict[str, str] = {}
    for environment in environments:
        for key, value in environment.items():
            merged.setdefault(key, value)
    return merged


def _with_endpoint(session: boto3.session.Session, endpoint: str, action):
    class _Session:
        def client(self, service: str):
            return session.client(service, endpoint_url=endpoint)
    return action(_Session())


def _summary(created: dict[str, dict]) -> str:
    return ", ".join(f"{len(items)} {kind}" for kind, items in created.items())


def _get_status(url: str, headers: dict[str, str]) -> int:
    return _get(url, headers)[0]


def _get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


def _wait_ready(url: str, headers: dict[str, str], timeout_s: float = READY_TIMEOUT_S) -> int:
    """Until GET /v1/ops/ready says the tables, bucket, queues and model answer; a stack that never gets there
    does not start. 401/403 (an auth mode the stack holds no operator credential for) cannot be checked here."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = _get(url, headers)
        if status in (200, 401, 403):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout_s:.0f}s: GET /v1/ops/ready answered {status} {body[:2000]}")
        time.sleep(0.2)
