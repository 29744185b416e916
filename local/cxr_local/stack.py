"""The embedded local stack: AWS side, model build, HTTP functions, API and infer path, started and stopped in order."""
from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import processes, snapshot
from .apigw import Cors, Router
from .gateway import GatewayOptions, GatewayProcess
from .gateway import announce as announce_gateway
from .aws_backend import REGION, AwsBackend
from .http_api import ApiServer
from .http_functions import HttpFunctions, merged_environment
from .infer_lambda import start_infer_lambda
from .readiness import get_status, wait_ready
from .report import announce, say
from .sam_env import env_json_beside, write_env_json_beside
from .sigv4_guard import Identity
from .template import StackTemplate
from .weights import served_model_names, start_model_build, weights_status
from .workers import InferWorkers

LOCAL_DEV_API_KEY = "cxr_local_dev_key"  # only on loopback; any other --host gets a random key unless --api-key


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
    state_dir: Path | None = None  # the embedded moto's snapshot (kept across a clean restart); None: not kept
    fresh: bool = False  # start empty even when state_dir holds a snapshot (the next clean stop replaces it)
    gateway: GatewayOptions | None = None  # --gateway: the DICOM gateway beside the stack (cxr_local.gateway)


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.aws: AwsBackend | None = None
        self.worker: InferWorkers | None = None
        self.infer_mapping = None  # InferPath=lambda: the emulated SQS event source mapping (infer_lambda.py)
        self.server: ApiServer | None = None
        self.functions: HttpFunctions | None = None
        self.stopping = threading.Event()
        self.gateway: GatewayProcess | None = None
        self._logs: list = []
        self.info: dict = {}
        self.identity = Identity.new()  # per run: clients never see it, tools read it from the ready file
        self.janitor = None  # removes the ready files should this process die without stop() (kill -9)
        self._serving: threading.Thread | None = None
        self._template: StackTemplate | None = None
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> dict:
        started = time.monotonic()
        phases: dict[str, float] = {}

        def mark(phase: str) -> None:
            phases[phase] = round(time.monotonic() - started, 3)

        opts = self.options
        self.aws = aws = AwsBackend(opts.host, opts.moto_port, opts.aws_endpoint, self.identity)
        base_env = {**os.environ, **aws.env}
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(opts.repo_root), os.environ.get("PYTHONPATH")]))
        if not aws.external:
            aws.start_moto(base_env, opts.repo_root, log=self._log_file("moto", default_to_file=True))
        if opts.ready_file is not None:
            self.janitor = processes.start_janitor(
                [opts.ready_file, env_json_beside(opts.ready_file)], env=base_env, cwd=opts.repo_root)
        build = (start_model_build(self._model_dir(), base_env, opts.repo_root, served_model_names(opts.params))
                 if opts.build_model else None)

        template = StackTemplate(opts.template, opts.params, aws.stack_identity(opts.params))
        model_dir = str(self._model_dir())
        functions = template.functions()
        routes = template.http_routes()
        http_env = merged_environment(functions, routes)
        audit = {"AUDIT_LOG_FILE": self._audit_log_path()}  # the audit trail: a file here, a log group on AWS
        os.environ.update({**aws.env, **http_env, "MODEL_DIR": model_dir, **audit, **opts.env})
        # the functions' init (imports) overlaps moto's start and the model build; they touch AWS only per event
        local_overrides = {**aws.env, "MODEL_DIR": model_dir, **audit, **opts.env}
        self.functions = HttpFunctions(functions, routes, local_overrides, opts.max_instances, opts.max_waiting_polls,
                                       REGION, template.resolver.identity.account_id)
        self.functions.start_warming()

        if aws.wait_for_moto():
            mark("moto_up")
        created = aws.create_resources(template)
        mark("resources_created")
        self._template = template
        self._restore_state(template)
        api_key = self._mint_api_key(template)
        if build is not None:
            if build.wait() != 0:
                raise RuntimeError(f"model build failed with exit code {build.returncode} (see its output above)")
        mark("model_build_done")
        weights = weights_status(model_dir)

        infer = functions.get("InferFunction")
        if opts.workers > 0 and infer is not None:
            self.infer_mapping = start_infer_lambda(
                template, infer, aws.sqs_client(),
                max_local=opts.workers, region=REGION, overrides=local_overrides, say=say, nice=opts.worker_nice)
        if opts.workers > 0 and infer is not None and self.infer_mapping is None:  # InferPath=ec2
            worker_env = {**base_env, **infer.environment, "MODEL_DIR": model_dir,
                          "WORKER_PROCESSES": str(opts.workers), **opts.env}
            self.worker = InferWorkers(worker_env, opts.repo_root, lambda: self._log_file("worker"), say,
                                       nice=opts.worker_nice)
            self.worker.start()

        self.functions.wait_warm()
        mark("functions_warm")
        self.functions.check_started()
        api_id = str(template.resolver.ref("HttpApi")) if "HttpApi" in template.resolver.resources else "local"
        try:
            self.server = ApiServer((opts.host, opts.port), Router(routes),
                                    self.functions.invoke,
                                    stage=template.parameters.get("Stage", "local"),
                                    static_root=opts.repo_root / "clients" / "web", api_id=api_id,
                                    account_id=template.resolver.identity.account_id, access_log=opts.access_log,
                                    cors=Cors.from_template(template.http_api_cors()))
        except OSError as error:
            raise RuntimeError(f"cannot listen on {opts.host}:{opts.port}: {error} (choose another: --port)") from error
        self._serving = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._serving.start()
        url = f"http://{opts.host}:{self.server.server_address[1]}"
        headers = {"x-api-key": api_key} if api_key else {}
        health = get_status(f"{url}/v1/ops/health", headers)
        ready = wait_ready(f"{url}/v1/ops/ready", headers)
        mark("ready")
        self.info = {**self.info, "url": url, "api_key": api_key, "moto_endpoint": aws.endpoint,
                     "aws_region": REGION, "aws_access_key_id": self.identity.access_key_id,
                     "aws_secret_access_key": self.identity.secret_access_key,
                     "aws_env": {**{key: value for key, value in http_env.items() if key.endswith(("_TABLE", "_BUCKET", "_ARN",
                                                                                                   "_URL"))},
                                 **aws.env, **audit},
                     "pid": os.getpid(), "weights": weights, "model_dir": model_dir,
                     "workers": opts.workers if (self.worker or self.infer_mapping) else 0, "health_status": health,
                     "ready_status": ready, "infer_path": str(template.parameters.get("InferPath", "")),
                     "ready_seconds": round(time.monotonic() - started, 3), "phases_s": phases, "resources": created,
                     "routes": [route.route_key for route in routes],
                     "params": dict(opts.params), "account_id": template.resolver.identity.account_id,
                     "queue_url_base": template.resolver.identity.queue_url_base,
                     "external_endpoint": bool(aws.external),
                     "events_topic_arn": created.get("topics", {}).get("JobEventsTopic")}
        self.info.update(aws.ready_info())
        if opts.gateway is not None:
            self.gateway = GatewayProcess(opts.gateway, opts.repo_root, say)
            self.info["gateway"] = self.gateway.start(url, opts.host, str(template.parameters.get("AuthMode", "none")),
                                                      {**base_env, **opts.env}, log=self._log_file("gateway"))
            announce_gateway(self.info["gateway"], say)
        if opts.ready_file is not None:
            self.info["env_json"] = str(write_env_json_beside(self.info, opts.template, opts.ready_file))
            say(f"sam local invoke --env-vars {self.info['env_json']} (see docs/deploy.md)")
        announce(self.info, self.options.ready_file)
        return self.info

    def _mint_api_key(self, template: StackTemplate) -> str | None:
        """With AuthMode=api_key every route wants an X-Api-Key: register one operator key for local use."""
        if str(template.parameters.get("AuthMode", "none")) != "api_key":
            return None
        from cxr_core.bootstrap import Runtime
        from cxr_core.config import read_settings

        api_key = self.options.api_key or (LOCAL_DEV_API_KEY if self.options.host in ("127.0.0.1", "localhost")
                                           else None)
        return Runtime(read_settings(os.environ)).api_keys.create("local-dev", label="cxr_local", api_key=api_key, operator=True)

    def _restore_state(self, template: StackTemplate) -> None:
        if not self.aws.external and self.options.state_dir is not None:
            snapshot.restore_at_start(self.aws.session(), template, self.options.state_dir, self.options.fresh, say)

    def _save_state(self) -> None:
        if self.options.state_dir is not None and self._template is not None and self.aws and self.aws.moto_alive():
            snapshot.save_at_stop(self.aws.session(), self._template, self.options.state_dir, say)

    def dead_part(self) -> str | None:
        """What has died that the stack cannot serve without, said for the operator; None while all live."""
        moto = self.aws.moto if self.aws else None
        if moto is not None and moto.poll() is not None:  # poll() reaps it: no zombie
            return (f"the embedded moto server (pid {moto.pid}) exited with {processes.exit_text(moto.returncode)}. "
                    f"It held the stack's tables, queues, images and results in memory: everything since this start "
                    f"({self.started_at}) is lost, including jobs accepted with 201; the last clean stop's "
                    f"snapshot{f' in {self.options.state_dir}' if self.options.state_dir else ''} is kept")
        if self._serving is not None and not self._serving.is_alive() and not self.stopping.is_set():
            return "the HTTP API's server loop stopped"
        return None

    def _model_dir(self) -> Path:
        return (self.options.model_dir or self.options.repo_root / "layers" / "model" / "weights").resolve()

    def _audit_log_path(self) -> str:
        """The audit trail's file (python -m cxr_core.admin audit JOB_ID reads it); the ready file lists it."""
        log_dir = self.options.log_dir or Path(tempfile.gettempdir()) / f"cxr_local-{os.getpid()}"
        log_dir.mkdir(parents=True, exist_ok=True)
        path = str(log_dir / "audit.log")
        self.info.setdefault("logs", {})["audit"] = path
        return path

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
        if self.gateway is not None:
            self.gateway.stop()  # a client of the API: it goes first (what it holds is in its store)
        if self.server is not None:
            self.server.stop_accepting()
        if self.worker is not None:
            self.worker.stop(grace_s=30)
        if self.infer_mapping is not None:
            self.infer_mapping.stop(grace_s=30)  # the batches in flight finish and settle
            if self.options.log_dir is not None:
                self.infer_mapping.write_stats(self.options.log_dir / "infer-mapping.json")
        if self.server is not None:
            longest_s = self.functions.longest_timeout_s() if self.functions else None
            if not self.server.drain(timeout_s=longest_s + 5 if longest_s is not None else 5):
                say("WARNING: requests still in hand after their functions' timeout; stopping anyway")
            self.server.server_close()
        if self.functions is not None:
            self.functions.close()
        self._save_state()
        if self.aws is not None:
            self.aws.stop()
        for handle in self._logs:
            handle.close()
        if self.options.ready_file:
            self.options.ready_file.unlink(missing_ok=True)
            env_json_beside(self.options.ready_file).unlink(missing_ok=True)
        processes.stop(self.janitor, grace_s=5)
        say("stopped")
