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
from .apigw import Router
from .http_api import ApiServer
from .intrinsics import StackIdentity
from .lambdas import FunctionPool
from .resources import create_stack_resources
from .template import StackTemplate
from .report import announce, say
from .weights import weights_status
from .workers import InferWorkers

REGION = "us-east-1"
LONG_POLL_ROUTE = "GET /v1/jobs/{id}"
LOCAL_DEV_API_KEY = "cxr_local_dev_key"  # only on loopback; any other --host gets a random key unless --api-key
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
}


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


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.moto: subprocess.Popen | None = None
        self.worker: InferWorkers | None = None
        self.server: ApiServer | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.waiting_pools: dict[str, FunctionPool] = {}  # started lazily: one environment per waiting poll
        self.stopping = threading.Event()
        self._logs: list = []
        self.info: dict = {}

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> dict:
        started = time.monotonic()
        phases: dict[str, float] = {}

        def mark(phase: str) -> None:
            phases[phase] = round(time.monotonic() - started, 3)

        opts = self.options
        moto_port = opts.moto_port or processes.free_port(opts.host)
        moto_endpoint = f"http://{opts.host}:{moto_port}"
        base_env = {**os.environ, **LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": moto_endpoint}
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(opts.repo_root), os.environ.get("PYTHONPATH")]))
        self.moto = processes.start_moto(opts.host, moto_port, env=base_env, cwd=opts.repo_root,
                                         log=self._log_file("moto", default_to_file=True))
        build = self._start_model_build(base_env)

        template = StackTemplate(opts.template, opts.params,
                                 StackIdentity(stack_name=f"cxr-{opts.params.get('Stage', 'local')}",
                                               region=REGION, queue_url_base=moto_endpoint))
        model_dir = str((opts.repo_root / "layers" / "model" / "weights").resolve())
        functions = template.functions()
        routes = template.http_routes()
        http_env = _merged_environment([functions[name].environment for name in {r.function for r in routes}])
        os.environ.update({**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": moto_endpoint, **http_env, "MODEL_DIR": model_dir,
                           **opts.env})
        # the functions' init (imports) overlaps moto's start and the model build; they touch AWS only per event
        local_overrides = {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": moto_endpoint, "MODEL_DIR": model_dir, **opts.env}
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

        processes.wait_for_http(f"{moto_endpoint}/moto-api/", self.moto, timeout_s=60)
        mark("moto_up")
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing",
                                        aws_secret_access_key="testing")
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
                                    account_id=template.resolver.identity.account_id, access_log=opts.access_log)
        except OSError as error:
            raise RuntimeError(f"cannot listen on {opts.host}:{opts.port}: {error} (choose another: --port)") from error
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        url = f"http://{opts.host}:{self.server.server_address[1]}"
        health = _get_status(f"{url}/v1/ops/health", {"x-api-key": api_key} if api_key else {})
        self.info = {**self.info, "url": url, "api_key": api_key, "moto_endpoint": moto_endpoint,
                     "pid": os.getpid(), "weights": weights,
                     "workers": opts.workers if self.worker else 0, "health_status": health,
                     "ready_seconds": round(time.monotonic() - started, 3), "phases_s": phases, "resources": created,
                     "events_topic_arn": created.get("topics", {}).get("JobEventsTopic"),
                     "routes": [route.route_key for route in routes]}
        announce(self.info, self.options.ready_file)
        return self.info

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

    def _start_model_build(self, env: dict[str, str]) -> subprocess.Popen | None:
        if not self.options.build_model:
            return None
        command = [sys.executable, "-m", "cxr_model.build", "--model-dir", "layers/model/weights",
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
        """Workers first (SIGTERM: they finish the batch in hand), then the API, then moto."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        say("stopping: infer workers, API, moto")
        if self.worker is not None:
            self.worker.stop(grace_s=30)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for pool in [*self.pools.values(), *self.waiting_pools.values()]:
            pool.close()
        processes.stop(self.moto, grace_s=5)
        for handle in self._logs:
            handle.close()
        if self.options.ready_file:
            self.options.ready_file.unlink(missing_ok=True)
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
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
