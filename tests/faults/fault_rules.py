"""The fault proxy's rules: what a request is (service, operation), which fault it gets, the error it answers."""
from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from urllib.parse import urlsplit

FAULTS = ("500", "503", "throttle", "drop", "drop_after", "delay", "conflict")
_SCOPE = re.compile(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request")
_S3_OPERATIONS = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject",
                  "POST": "PostObject"}


def classify(method: str, path: str, headers) -> tuple[str, str]:
    """(service, operation) of an AWS request as botocore sends it."""
    match = _SCOPE.search(headers.get("Authorization", ""))
    service = match.group(1) if match else "unknown"
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.rpartition(".")[2]
    if service == "s3":
        parts = urlsplit(path)
        is_object = len([p for p in parts.path.split("/") if p]) >= 2
        if not is_object:
            return service, {"GET": "ListObjects", "PUT": "CreateBucket", "HEAD": "HeadBucket"}.get(method, method)
        return service, _S3_OPERATIONS.get(method, method)
    return service, method


def error_response(service: str, fault: str, items: int = 2) -> tuple[int, dict[str, str], bytes]:
    if fault == "conflict":  # DynamoDB TransactWriteItems cancelled: another transaction held its items
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}] * items
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                           "message": "Transaction cancelled [TransactionConflict]", "CancellationReasons": reasons})
        return 400, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault-proxy"}, body.encode()
    status, code, message = {"500": (500, "InternalError", "injected internal error"),
                             "503": (503, "ServiceUnavailable", "injected: service unavailable"),
                             "throttle": (400, "ThrottlingException", "injected: rate exceeded")}[fault]
    if service == "s3":
        code = "SlowDown" if fault in ("503", "throttle") else code
        status = 503 if fault == "throttle" else status
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>fault-proxy</RequestId></Error>").encode()
        return status, {"Content-Type": "application/xml"}, body
    namespace = "com.amazonaws.dynamodb.v20120810" if service == "dynamodb" else "com.amazonaws.sqs"
    if service == "dynamodb" and fault == "500":
        code = "InternalServerError"
    body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault-proxy"}
    if service == "sqs":
        headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
    return status, headers, body


class FaultRules:
    """Thread-safe rule list and counters."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._random = random.Random(seed)
        self.injected: Counter = Counter()
        self.seen: Counter = Counter()

    def set(self, rules: list[dict]) -> None:
        for rule in rules:
            if rule.get("fault") not in FAULTS:
                raise ValueError(f"unknown fault {rule.get('fault')!r}; one of {FAULTS}")
            if ("times" in rule) == ("probability" in rule):
                raise ValueError("a rule needs exactly one of 'times' or 'probability'")
        with self._lock:
            self._rules = [{"service": "*", "operation": "*", **rule} for rule in rules]

    def state(self) -> dict:
        with self._lock:
            return {"rules": [dict(r) for r in self._rules], "injected": dict(self.injected), "seen": dict(self.seen)}

    def pick(self, service: str, operation: str) -> dict | None:
        """The rule whose fault this request gets, if any (and count it)."""
        with self._lock:
            self.seen[f"{service}.{operation}"] += 1
            for rule in self._rules:
                if rule["service"] not in ("*", service) or rule["operation"] not in ("*", operation):
                    continue
                if "times" in rule:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                elif self._random.random() >= rule["probability"]:
                    continue
                self.injected[f"{service}.{operation}:{rule['fault']}"] += 1
                return dict(rule)
        return None
