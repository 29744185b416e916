"""HTTP client for the v1 API: submit, job status, result; every failure becomes an ApiError with an exit code."""
from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from . import exit_codes

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
REQUEST_TIMEOUT_S = 30
RETRY_STATUSES = (429, 503)  # throttled or briefly unavailable: the API says when to come back
MAX_RETRIES = 4
TERMINAL = ("COMPLETED", "FAILED")


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


class Client:
    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, api_key: str | None = None,
                 session: requests.Session | None = None, sleep=time.sleep) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "cxr-cli/0.1"
        if api_key:
            self.session.headers["x-api-key"] = api_key
        self._sleep = sleep

    def submit(self, data: bytes, media_type: str) -> Submitted:
        response = self._request("POST", "/v1/jobs", data=data, headers={"Content-Type": media_type})
        return Submitted(response.status_code, response.json())

    def job(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def result(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}/result").json()

    def wait(self, job_id: str, timeout_s: float, first_interval_s: float = 0.2,
             max_interval_s: float = 2.0) -> dict:
        """Poll GET /v1/jobs/{id} until COMPLETED or FAILED; the interval grows so long jobs cost few calls."""
        deadline = time.monotonic() + timeout_s
        interval = first_interval_s
        while True:
            job = self.job(job_id)
            if job.get("status") in TERMINAL:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(f"job {job_id} still {job.get('status')} after {timeout_s:g}s", exit_codes.TIMEOUT)
            self._sleep(min(interval, remaining))
            interval = min(interval * 1.5, max_interval_s)

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.endpoint}{path}"
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self.session.request(method, url, timeout=REQUEST_TIMEOUT_S, **kwargs)
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
