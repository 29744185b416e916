"""HTTP client for the v1 API: submit, job status, result; every failure becomes an ApiError with an exit code."""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Callable

import requests

from . import exit_codes

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
REQUEST_TIMEOUT_S = 30
RETRY_STATUSES = (429, 503)  # throttled or briefly unavailable: the API says when to come back
MAX_RETRIES = 4
TERMINAL = ("COMPLETED", "FAILED")
LONG_POLL_S = 20  # GET /v1/jobs/{id}?wait=N answers when the job is final or after N s (N <= 20)
# Lambda takes at most 6 MB of event; a binary body travels base64-encoded (4/3 larger) inside the event JSON.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
EVENT_OVERHEAD_BYTES = 64 * 1024  # headers, request context and the rest of the event, generously
INLINE_LIMIT_BYTES = (LAMBDA_PAYLOAD_BYTES - EVENT_OVERHEAD_BYTES) * 3 // 4  # 4,669,440: larger goes through S3
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ApiError(Exception):
    """An answer (or no answer) that a command cannot go on from; exit_code says what kind."""

    def __init__(self, message: str, exit_code: int = exit_codes.API_ERROR, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.exit_code, self.status, self.code = exit_code, status, code


@dataclass(frozen=True)
class Submitted:
    """What POST /v1/jobs answered: a new job (201), a cache hit with its result, or the job already running."""
    http_status: int
    body: dict

    @property
    def cached(self) -> bool:
        return bool(self.body.get("cached"))


def normalise_endpoint(endpoint: str) -> str:
    """`127.0.0.1:8080` means http://127.0.0.1:8080; any scheme other than http(s) is a usage error."""
    endpoint = endpoint.strip().rstrip("/")
    if not _SCHEME.match(endpoint):
        endpoint = f"http://{endpoint}"
    if not endpoint.lower().startswith(("http://", "https://")) or len(endpoint.split("://", 1)[1]) == 0:
        raise ApiError(f"--endpoint {endpoint!r}: expected http://HOST[:PORT] or https://HOST", exit_codes.USAGE)
    return endpoint


class _CountingReader:
    """A request body that reports the bytes sent so far (requests streams it, with a Content-Length)."""

    def __init__(self, data: bytes, progress: Callable[[int], None] | None) -> None:
        self.data, self.offset, self.progress = data, 0, progress

    def __len__(self) -> int:
        return len(self.data) - self.offset

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else min(len(self.data), self.offset + size)
        chunk = self.data[self.offset:end]
        self.offset = end
        if chunk and self.progress:
            self.progress(len(chunk))
        return chunk


class Client:
    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, api_key: str | None = None,
                 session: requests.Session | None = None, sleep=time.sleep,
                 inline_limit: int = INLINE_LIMIT_BYTES, model: str | None = None) -> None:
        self.endpoint = normalise_endpoint(endpoint)
        self.model = model  # a served model other than the default (GET /v1/models), sent as ?model=
        self.inline_limit = inline_limit
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "cxr-cli/0.1"
        if api_key:
            self.session.headers["x-api-key"] = api_key
        self._sleep = sleep

    def submit(self, data: bytes, media_type: str, progress: Callable[[int], None] | None = None) -> Submitted:
        """Inline up to inline_limit bytes; larger images go to S3 through a presigned upload (POST /v1/uploads),
        which API Gateway's and Lambda's body limits do not apply to. progress(n) is called as bytes go out."""
        if len(data) > self.inline_limit:
            return self.submit_presigned(data, media_type, progress)
        response = self._request("POST", "/v1/jobs", data=lambda: _CountingReader(data, progress),
                                 headers={"Content-Type": media_type}, params=self._model_params())
        return Submitted(response.status_code, response.json())

    def submit_presigned(self, data: bytes, media_type: str,
                         progress: Callable[[int], None] | None = None) -> Submitted:
        # the size and SHA-256 are signed into the URL: S3 refuses another length or other bytes
        upload = self._request("POST", "/v1/uploads", json={"content_type": media_type, "size": len(data),
                                                            "sha256": hashlib.sha256(data).hexdigest()}).json()
        headers = upload.get("headers") or {"Content-Type": media_type}
        try:
            stored = self.session.request(upload.get("method", "PUT"), upload["url"], headers=headers,
                                          data=_CountingReader(data, progress), timeout=REQUEST_TIMEOUT_S * 10)
        except requests.RequestException as error:
            raise ApiError(f"presigned upload to S3 failed: {_describe(error)}") from error
        if stored.status_code >= 300:
            raise ApiError(f"presigned upload to S3 failed: {stored.status_code} {stored.text.strip()[:200]}",
                           status=stored.status_code)
        response = self._request("POST", "/v1/jobs", json={"upload_id": upload["upload_id"]},
                                 params=self._model_params())
        return Submitted(response.status_code, response.json())

    def _model_params(self) -> dict[str, str] | None:
        return {"model": self.model} if self.model else None

    def models(self) -> dict:
        """GET /v1/models: what this deployment serves."""
        return self._request("GET", "/v1/models").json()

    def job(self, job_id: str, wait: float | None = None) -> dict:
        """GET /v1/jobs/{id}; with wait, a long poll that answers once the job is final or after wait s."""
        params = {"wait": f"{wait:g}"} if wait else None
        return self._request("GET", f"/v1/jobs/{job_id}", params=params).json()

    def result(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}/result").json()

    def heatmap(self, job_id: str, label: str | None = None, fmt: str = "png", opacity: float | None = None) -> bytes:
        """GET /v1/jobs/{id}/heatmap: a PNG overlay on the image the model saw, or (fmt json) the raw 7x7 grid."""
        params = {"format": fmt, **({"label": label} if label else {}),
                  **({"opacity": f"{opacity:g}"} if opacity is not None else {})}
        return self._request("GET", f"/v1/jobs/{job_id}/heatmap", params=params).content

    def jobs(self, limit: int = 20, cursor: str | None = None, status: str | None = None, since: str | None = None,
             until: str | None = None) -> dict:
        """GET /v1/jobs: one page of this key's own jobs, newest first ({"jobs": [...], "next_cursor"})."""
        params = {name: value for name, value in (("limit", str(limit)), ("cursor", cursor), ("status", status),
                                                  ("since", since), ("until", until)) if value is not None}
        return self._request("GET", "/v1/jobs", params=params).json()

    def delete(self, job_id: str) -> None:
        """DELETE /v1/jobs/{id}: the job, its result, its cache entry and (unless another job needs it) its image."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def health(self) -> dict:
        """GET /v1/ops/health: liveness and the model identity the server runs (unauthenticated)."""
        return self._request("GET", "/v1/ops/health").json()

    def wait(self, job_id: str, timeout_s: float, first_interval_s: float = 0.2,
             max_interval_s: float = 2.0) -> dict:
        """Long-poll GET /v1/jobs/{id}?wait=N until COMPLETED or FAILED. A server that answers a long poll early
        (one that ignores `wait`) is polled at a growing interval instead, so it never sees a tight loop."""
        deadline = time.monotonic() + timeout_s
        interval = first_interval_s
        while True:
            remaining = deadline - time.monotonic()
            wait = min(LONG_POLL_S, round(remaining, 1)) if remaining >= 1 else None
            asked = time.monotonic()
            job = self.job(job_id, wait)
            if job.get("status") in TERMINAL:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(f"job {job_id} still {job.get('status')} after {timeout_s:g}s", exit_codes.TIMEOUT)
            if wait is None or time.monotonic() - asked < wait - 0.5:
                self._sleep(min(interval, remaining))
                interval = min(interval * 1.5, max_interval_s)

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.endpoint}{path}"
        body = kwargs.pop("data", None)
        for attempt in range(MAX_RETRIES + 1):
            try:  # a body factory gives every retry a fresh stream
                data = body() if callable(body) else body
                response = self.session.request(method, url, timeout=REQUEST_TIMEOUT_S, data=data, **kwargs)
            except requests.RequestException as error:
                raise ApiError(f"cannot reach {self.endpoint}: {_describe(error)}") from error
            if response.status_code in RETRY_STATUSES and attempt < MAX_RETRIES:
                self._sleep(_retry_after(response, attempt))
                continue
            if response.status_code >= 400:
                raise _api_error(method, path, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _describe(error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return f"no answer within {REQUEST_TIMEOUT_S}s"
    if isinstance(error, requests.ConnectionError):
        return "connection failed (is the stack running, is the URL right?)"
    return f"{type(error).__name__}: {error}"


def _retry_after(response: requests.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 30.0)
    except ValueError:
        return 0.5 * 2 ** attempt


def _api_error(method: str, path: str, response: requests.Response) -> ApiError:
    try:
        body = response.json()
        message, code = body.get("error") or response.reason, body.get("code")
    except ValueError:
        message, code = (response.text.strip()[:200] or response.reason), None
    # only the API's own codes mean "no such job" / "not yet": a 404 from a wrong endpoint or route is an API error
    exit_code = {"JOB_NOT_FOUND": exit_codes.NOT_FOUND, "RESULT_NOT_READY": exit_codes.NOT_READY}.get(
        code, exit_codes.API_ERROR)
    label = f"{response.status_code} {code}" if code else str(response.status_code)
    return ApiError(f"{method} {path}: {label}: {message}", exit_code, response.status_code, code)
