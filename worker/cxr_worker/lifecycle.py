"""The EC2 worker's side of its Auto Scaling group's termination hook: notice it (IMDSv2), drain, then complete it."""
from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from typing import Callable

from cxr_core.aws_adapters import AutoScalingLifecycleAction

log = logging.getLogger("cxr.worker.lifecycle")
TARGET_STATE_PATH = "autoscaling/target-lifecycle-state"
TERMINATING = "Terminated"  # the target state IMDS shows while the hook holds the instance in Terminating:Wait
TOKEN_TTL_SECONDS = 21600


class InstanceMetadata:
    """IMDSv2: a session token (PUT), then GETs that carry it."""

    def __init__(self, endpoint: str, timeout_s: float = 2.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s
        self._token: str | None = None

    def _fetch_token(self) -> str:
        request = urllib.request.Request(f"{self.endpoint}/latest/api/token", method="PUT",
                                         headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return response.read().decode()

    def get(self, path: str) -> str | None:
        """The item's text, or None when the instance has no such item (404)."""
        for attempt in range(2):
            if self._token is None:
                self._token = self._fetch_token()
            request = urllib.request.Request(f"{self.endpoint}/latest/meta-data/{path}",
                                             headers={"X-aws-ec2-metadata-token": self._token})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return response.read().decode().strip()
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                if error.code == 401 and attempt == 0:  # the token expired: take a new one once
                    self._token = None
                    continue
                raise
        return None


class TerminationHook:
    """Watches for the group's scale-in of this instance; after the drain, lets the termination continue."""

    def __init__(self, action: AutoScalingLifecycleAction, metadata: InstanceMetadata, poll_seconds: float) -> None:
        self.action = action
        self.metadata = metadata
        self.poll_seconds = poll_seconds
        self.instance_id: str | None = None
        self.terminating = threading.Event()

    def watch(self, stopped: threading.Event, drain: Callable[[], None]) -> None:
        """Poll the target lifecycle state until the instance is being terminated (then drain) or the worker stops."""
        while not stopped.wait(self.poll_seconds):
            try:
                if self.instance_id is None:
                    self.instance_id = self.metadata.get("instance-id")
                state = self.metadata.get(TARGET_STATE_PATH)
            except OSError as error:  # IMDS briefly unreachable: the hook's heartbeat timeout leaves time to retry
                log.warning("instance metadata unavailable (%s); asking again in %.0f s", error, self.poll_seconds)
                continue
            if state == TERMINATING:
                log.warning("instance %s is being terminated by %s: draining the batch in hand",
                            self.instance_id, self.action.group_name)
                self.terminating.set()
                drain()
                return

    def complete(self) -> None:
        """CONTINUE: every worker has finished and settled its batch, so the instance may go now."""
        self.action.complete(self.instance_id)
        log.warning("drained; lifecycle action %s completed for instance %s", self.action.hook_name, self.instance_id)
