"""The composition root: settings, AWS clients made once, the tables bound, the adapters and the services' wiring,
and the model on first use. Nothing else reads settings into an adapter or makes an AWS client."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, lru_cache
from typing import Callable

import boto3
from botocore.config import Config

from cxr_core.audit import CloudWatchAuditLog, FileAuditLog, LoggingAuditLog
from cxr_core.auth import ApiKeys, Authenticator, FailureLimiter, RateLimiter
from cxr_core.aws_adapters import AutoScalingLifecycleAction, S3ImageStore, SnsEventPublisher, SqsJobQueue
from cxr_core.config import Settings, settings
from cxr_core.dynamo_auth import DynamoApiKeyStore, DynamoLeases, DynamoRateCounter
from cxr_core.dynamo_image_holds import DynamoImageHolds
from cxr_core.dynamo_store import DynamoJobStore
from cxr_core.records import TableNames, bind_tables
from cxr_core.services.erasure import ErasureDeps
from cxr_core.services.infer import InferDeps
from cxr_core.services.presigned_uploads import UploadSettings
from cxr_core.services.recovery import RecoveryReport, recover_stuck_jobs
from cxr_core.services.submit import SubmitDeps
from cxr_core.sqs_consumer import SqsBatchSource

READINESS_KEY = "__readiness_probe__"  # never a real key: its lookup proves the table answers


class Runtime:
    def __init__(self, config: Settings):
        self.settings = config
        bind_tables(TableNames(jobs=config.jobs_table, results=config.results_table, api_keys=config.api_keys_table,
                               rate_limits=config.rate_limits_table), config.region, config.dynamodb_endpoint_url)
        client_config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=32)
        # SigV4 presigned URLs (botocore's default for S3 presigning is SigV2): region-scoped, headers signed
        # responses are validated where the caller asks (S3ImageStore.get): a presigned upload's read is not, as its
        # SHA-256 was verified by S3 when it was written and hashing it again would cost what trusting that saves
        s3_config = Config(signature_version="s3v4", response_checksum_validation="when_required")
        if (config.aws_endpoint_url or "").startswith("http://"):
            # over HTTPS with a checksum header (AWS) botocore signs UNSIGNED-PAYLOAD; over plain HTTP (the local
            # stack) it would hash every body for the signature, a SHA-256 pass per 10 MB put that AWS never pays
            s3_config = s3_config.merge(Config(s3={"payload_signing_enabled": False}))
        self.s3 = boto3.client("s3", region_name=config.region, endpoint_url=config.aws_endpoint_url,
                               config=client_config.merge(s3_config))
        self.sqs = boto3.client("sqs", region_name=config.region, endpoint_url=config.aws_endpoint_url,
                                config=client_config)
        self._client_config = client_config
        self.jobs = DynamoJobStore(region=config.region, endpoint_url=config.dynamodb_endpoint_url,
                                   ttl_days=config.job_ttl_days)
        self.holds = DynamoImageHolds(ttl_days=config.job_ttl_days)
        self.images = S3ImageStore(self.s3, config.images_bucket)
        self.queue = SqsJobQueue(self.sqs, config.queue_url, config.dlq_url or None)
        self.sns = boto3.client("sns", region_name=config.region, endpoint_url=config.aws_endpoint_url,
                                config=client_config)
        self.events = (SnsEventPublisher(self.sns, config.events_topic_arn)
                       if config.events_topic_arn else None)  # no topic configured: no events
        if config.audit_log_file:
            self.audit = FileAuditLog(config.audit_log_file)
        elif config.audit_log_group:
            self.audit = CloudWatchAuditLog(boto3.client("logs", region_name=config.region,
                                                         endpoint_url=config.aws_endpoint_url, config=client_config),
                                            config.audit_log_group)
        else:
            self.audit = LoggingAuditLog()
        self.api_keys = ApiKeys(DynamoApiKeyStore(), config.auth_cache_seconds)
        self.auth = Authenticator(config.auth_mode, self.api_keys, FailureLimiter(config.auth_failures_per_minute))
        self.rate_limiter = RateLimiter(DynamoRateCounter(), config.rate_limit_per_minute, lease=config.rate_limit_lease)
        self.upload_claims = DynamoRateCounter()  # a claim is a counter with limit 1 (RateLimitsTable, with TTL)
        self.long_poll_leases = DynamoLeases()  # a client's concurrent long polls (RateLimitsTable, with TTL)
        self._predictors: dict = {}  # model name -> predictor, loaded on the model's first job
        self._predictors_lock = threading.Lock()
        self.upload_settings = UploadSettings(url_seconds=config.upload_url_seconds,
                                              max_bytes=config.max_presigned_upload_bytes)

    @cached_property
    def model_identity(self) -> dict:
        """The default model's identity without loading the network (submit and poll never run it)."""
        from cxr_model import read_identity
        return read_identity(self.settings.model_dir, name=self.settings.model_name,
                             engine=self.settings.model_engine, preprocess_mode=self.settings.preprocess_mode,
                             precision=self.settings.model_precision)

    @cached_property
    def served_models(self) -> dict[str, dict]:
        """Every served model's card (identity, findings, input size), the default first; nothing is loaded."""
        from cxr_model import model_card
        config = self.settings
        return {name: model_card(config.model_dir, name, engine=config.model_engine,
                                 preprocess_mode=config.preprocess_mode, precision=config.model_precision)
                for name in config.served_models}

    def predictor_for(self, name: str):
        """A served model's predictor, loaded on its first job (one network in memory per model that has had work);
        KeyError for a model this deployment does not serve."""
        if name not in self.settings.served_models:
            raise KeyError(name)
        with self._predictors_lock:
            if name not in self._predictors:
                from cxr_model import load_predictor
                config = self.settings
                self._predictors[name] = load_predictor(config.model_dir, engine=config.model_engine,
                                                        threads=config.model_threads,
                                                        preprocess_mode=config.preprocess_mode, name=name,
                                                        precision=config.model_precision)
            return self._predictors[name]

    @property
    def predictor(self):
        return self.predictor_for(self.settings.model_name)

    def _model_ready(self) -> dict:
        """The artifacts on disk still name the models this process serves (a rebuilt model means a restart)."""
        from cxr_model import check_artifacts
        config = self.settings
        for name, card in self.served_models.items():
            on_disk = check_artifacts(config.model_dir, name=name, engine=config.model_engine,
                                      preprocess_mode=config.preprocess_mode, precision=config.model_precision)
            if on_disk["model_id"] != card["model_id"]:
                raise RuntimeError(f"serving {card['model_id']} but {on_disk['model_id']} is on disk")
        return self.model_identity

    def readiness_probes(self, worker: bool = False) -> dict[str, Callable[[], object]]:
        """One cheap call per dependency, each one its role in template.yaml allows: a read of a key that does not
        exist per table, the bucket's location, the queues' ARN, and the model artifacts. The API (worker=False)
        also needs the auth tables and reads the DLQ's depth; an infer worker needs neither."""
        from cxr_core.records import ApiKeyRecord, CacheRecord, JobRecord, RateLimitRecord

        def table(model) -> Callable[[], None]:
            def probe() -> None:
                try:
                    model.get(READINESS_KEY)
                except model.DoesNotExist:
                    pass
            return probe

        def queue(url: str) -> Callable[[], object]:
            return lambda: self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])

        config = self.settings
        probes = {"jobs_table": table(JobRecord), "results_table": table(CacheRecord)}
        if not worker and config.auth_mode == "api_key":
            probes["api_keys_table"] = table(ApiKeyRecord)
        if not worker and config.rate_limit_per_minute > 0:
            probes["rate_limits_table"] = table(RateLimitRecord)
        probes["images_bucket"] = lambda: self.s3.get_bucket_location(Bucket=config.images_bucket)
        probes["queue"] = queue(config.queue_url)
        if not worker and config.dlq_url:
            probes["dead_letter_queue"] = queue(config.dlq_url)
        probes["model"] = self._model_ready
        return probes

    def submit_deps(self) -> SubmitDeps:
        from cxr_core.image_checks import domain_image_check
        from cxr_model.privacy import deidentify_dicom
        from cxr_model.strip import strip_metadata
        return SubmitDeps(jobs=self.jobs, images=self.images, queue=self.queue,
                          model_id=self.model_identity["model_id"], check_image=domain_image_check,
                          deidentify_dicom=deidentify_dicom, strip_metadata=strip_metadata,
                          executor=self._submit_executor,
                          cache_scope=self.settings.cache_scope, events=self.events, holds=self.holds)

    def erasure_deps(self) -> ErasureDeps:
        return ErasureDeps(jobs=self.jobs, images=self.images, holds=self.holds)

    @cached_property
    def _submit_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=2, thread_name_prefix="check")

    @cached_property
    def _executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.settings.decode_threads, thread_name_prefix="fetch")

    def infer_deps(self) -> InferDeps:
        return InferDeps(jobs=self.jobs, images=self.images, predictor=self.predictor, executor=self._executor,
                         predictor_for=self.predictor_for,
                         max_receive_count=self.settings.max_receive_count,
                         lease_seconds=self.settings.visibility_timeout_seconds, events=self.events)

    def recover(self) -> RecoveryReport:
        """One recovery pass (the Lambda's schedule and the EC2 supervisor's timer both run this)."""
        config = self.settings
        return recover_stuck_jobs(self.jobs, self.queue, config.stuck_job_seconds, config.max_receive_count,
                                  events=self.events)

    def batch_source(self) -> SqsBatchSource:
        """The EC2 worker's micro-batches from the jobs queue."""
        config = self.settings
        return SqsBatchSource(self.sqs, config.queue_url, config.infer_batch_size, config.infer_batch_window_seconds,
                              config.visibility_timeout_seconds)

    def lifecycle_action(self) -> AutoScalingLifecycleAction | None:
        """The group's termination lifecycle hook when the launch template named one (EC2), else None."""
        config = self.settings
        if not (config.worker_lifecycle_hook and config.worker_group_name):
            return None
        # no endpoint_url: on EC2 the real service; elsewhere AWS_ENDPOINT_URL(_AUTO_SCALING) as botocore reads them
        autoscaling = boto3.client("autoscaling", region_name=config.region)
        return AutoScalingLifecycleAction(autoscaling, config.worker_group_name, config.worker_lifecycle_hook)


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return Runtime(settings())


def audit_log():
    """This process's audit log (the handlers' @audited routes ask for it per request)."""
    return runtime().audit
