"""Every setting of the service, read from environment variables declared in template.yaml."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping


@dataclass(frozen=True)
class Settings:
    stage: str
    jobs_table: str
    results_table: str
    images_bucket: str
    queue_url: str
    dlq_url: str
    aws_endpoint_url: str | None
    region: str
    max_upload_bytes: int
    job_ttl_days: int
    max_receive_count: int
    model_name: str  # the default model (answers requests that name none)
    served_models: tuple[str, ...]  # every model this deployment serves, the default first
    model_dir: str
    model_engine: str
    model_threads: int
    model_precision: str
    preprocess_mode: str
    infer_batch_size: int
    infer_batch_window_seconds: float
    decode_threads: int
    visibility_timeout_seconds: int
    worker_processes: int
    stuck_job_seconds: int
    auth_mode: str
    api_keys_table: str
    rate_limits_table: str
    rate_limit_per_minute: int
    rate_limit_lease: int
    auth_cache_seconds: int
    upload_url_seconds: int
    max_presigned_upload_bytes: int
    cache_scope: str
    auth_failures_per_minute: int
    long_poll_interval_seconds: float
    long_polls_per_client: int
    events_topic_arn: str
    audit_log_group: str  # CloudWatch log group of the audit trail (AWS); empty: none
    audit_log_file: str  # a file for the audit trail instead (the local stack); empty: none
    # EC2 worker only (the launch template's env file): the termination lifecycle hook it completes after draining
    worker_group_name: str = ""
    worker_lifecycle_hook: str = ""
    worker_lifecycle_poll_seconds: float = 5.0
    imds_endpoint: str = "http://169.254.169.254"
    # botocore's service-specific override (AWS_ENDPOINT_URL_DYNAMODB) beats AWS_ENDPOINT_URL, for pynamodb too
    dynamodb_endpoint_url: str | None = None


def _served(default: str, listed: str) -> tuple[str, ...]:
    """SERVED_MODELS (comma-separated) with the default model first, each once."""
    names = [default] + [name.strip() for name in listed.split(",") if name.strip()]
    return tuple(dict.fromkeys(names))


def _default_decode_threads(engine: str, batch_size: int) -> int:
    """Threads fetching and decoding a batch's images when DECODE_THREADS is 0. A GPU worker decodes one image per
    thread (up to 8) to keep its GPU fed; on the CPU the decode competes with the forward pass for the same cores,
    so one thread per vCPU the process may use overlaps the S3 reads without oversubscribing (8 threads on 2 vCPUs
    cost the clinical mix ~6 CPU ms per job more than 1-2, bench/README.md)."""
    if engine.endswith("-cuda"):
        return min(8, batch_size)
    return max(1, min(batch_size, len(os.sched_getaffinity(0))))


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings; read once."""
    return read_settings(os.environ)


def read_settings(environment: Mapping[str, str]) -> Settings:
    env = environment.get

    def _int(name: str, default: int) -> int:
        return int(env(name, default))

    return Settings(
        stage=env("STAGE", "local"),
        jobs_table=env("JOBS_TABLE", "cxr-local-jobs"),
        results_table=env("RESULTS_TABLE", "cxr-local-results"),
        images_bucket=env("IMAGES_BUCKET", "cxr-local-images"),
        queue_url=env("QUEUE_URL", ""),
        dlq_url=env("DLQ_URL", ""),
        aws_endpoint_url=env("AWS_ENDPOINT_URL") or None,
        region=env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
        max_upload_bytes=_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
        job_ttl_days=_int("JOB_TTL_DAYS", 30),
        max_receive_count=_int("MAX_RECEIVE_COUNT", 3),
        model_name=env("MODEL_NAME", "densenet121-res224-all"),
        served_models=_served(env("MODEL_NAME", "densenet121-res224-all"), env("SERVED_MODELS", "")),
        model_dir=env("MODEL_DIR", "/opt/weights"),
        model_engine=env("MODEL_ENGINE", "onnxruntime"),
        model_threads=_int("MODEL_THREADS", 1),
        model_precision=env("MODEL_PRECISION", "fp32"),
        preprocess_mode=env("PREPROCESS_MODE", "exact"),
        infer_batch_size=_int("INFER_BATCH_SIZE", 8),
        infer_batch_window_seconds=float(env("INFER_BATCH_WINDOW_SECONDS", "0")),
        decode_threads=_int("DECODE_THREADS", 0) or _default_decode_threads(env("MODEL_ENGINE", "onnxruntime"),
                                                                            _int("INFER_BATCH_SIZE", 8)),
        visibility_timeout_seconds=_int("VISIBILITY_TIMEOUT_SECONDS", 360),
        worker_processes=_int("WORKER_PROCESSES", os.cpu_count() or 1),
        stuck_job_seconds=_int("STUCK_JOB_SECONDS", 900),
        auth_mode=env("AUTH_MODE", "api_key"),
        api_keys_table=env("API_KEYS_TABLE", "cxr-local-api-keys"),
        rate_limits_table=env("RATE_LIMITS_TABLE", "cxr-local-rate-limits"),
        rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", 600),
        rate_limit_lease=_int("RATE_LIMIT_LEASE", 10),
        auth_cache_seconds=_int("AUTH_CACHE_SECONDS", 30),
        upload_url_seconds=_int("UPLOAD_URL_SECONDS", 900),
        max_presigned_upload_bytes=_int("MAX_PRESIGNED_UPLOAD_BYTES", 200 * 1024 * 1024),
        cache_scope=env("CACHE_SCOPE", "client"),
        auth_failures_per_minute=_int("AUTH_FAILURES_PER_MINUTE", 30),
        long_poll_interval_seconds=float(env("LONG_POLL_INTERVAL_SECONDS", "0.5")),
        long_polls_per_client=_int("LONG_POLLS_PER_CLIENT", 4),
        events_topic_arn=env("EVENTS_TOPIC_ARN", ""),
        audit_log_group=env("AUDIT_LOG_GROUP", ""),
        audit_log_file=env("AUDIT_LOG_FILE", ""),
        worker_group_name=env("WORKER_GROUP_NAME", ""),
        worker_lifecycle_hook=env("WORKER_LIFECYCLE_HOOK", ""),
        worker_lifecycle_poll_seconds=float(env("WORKER_LIFECYCLE_POLL_SECONDS", "5")),
        imds_endpoint=env("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254",
        dynamodb_endpoint_url=env("AWS_ENDPOINT_URL_DYNAMODB") or env("AWS_ENDPOINT_URL") or None,
    )
