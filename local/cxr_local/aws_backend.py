"""The stack's AWS side: an embedded moto with the stack's own identity, or an external endpoint, and its resources."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

import boto3

from . import processes
from .external import ExternalEndpoint
from .intrinsics import StackIdentity
from .report import say
from .resources import create_stack_resources
from .sam_env import REGION
from .sigv4_guard import ACCESS_KEY_ENV, SECRET_KEY_ENV, Identity
from .template import StackTemplate

LOCAL_AWS_ENV = {
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
}


def stack_aws_env(identity: Identity) -> dict[str, str]:
    """LOCAL_AWS_ENV plus the stack's own AWS identity: the only one its moto endpoint accepts."""
    return {**LOCAL_AWS_ENV, "AWS_ACCESS_KEY_ID": identity.access_key_id,
            "AWS_SECRET_ACCESS_KEY": identity.secret_access_key}


class AwsBackend:
    def __init__(self, host: str, moto_port: int, aws_endpoint: str | None, identity: Identity) -> None:
        self.identity = identity
        self.external = ExternalEndpoint(aws_endpoint, REGION) if aws_endpoint else None
        self.moto: subprocess.Popen | None = None
        if self.external:
            self.endpoint = self.external.endpoint
            credentials = {**LOCAL_AWS_ENV, **self.external.credentials_env}
        else:
            self.moto_host, self.moto_port = host, moto_port or processes.free_port(host)
            self.endpoint = f"http://{host}:{self.moto_port}"
            credentials = stack_aws_env(identity)
        self.env = {**credentials, "AWS_ENDPOINT_URL": self.endpoint}  # what every AWS client of the stack reads

    def start_moto(self, env: dict[str, str], cwd: Path, log: IO | None) -> None:
        """The embedded moto, which accepts only the stack's identity (no external endpoint)."""
        self.moto = processes.start_moto(self.moto_host, self.moto_port,
                                         env={**env, ACCESS_KEY_ENV: self.identity.access_key_id,
                                              SECRET_KEY_ENV: self.identity.secret_access_key},
                                         cwd=cwd, log=log)

    def stack_identity(self, params: dict[str, str]) -> StackIdentity:
        return self.external.identity(params) if self.external else StackIdentity(
            stack_name=f"cxr-{params.get('Stage', 'local')}", region=REGION, queue_url_base=self.endpoint)

    def wait_for_moto(self) -> bool:
        """Whether there was an embedded moto to wait for."""
        if self.external:
            return False
        processes.wait_for_http(f"{self.endpoint}/moto-api/", self.moto, timeout_s=60)
        return True

    def create_resources(self, template: StackTemplate) -> dict[str, dict]:
        if self.external:
            return self.external.ensure_resources(template)
        created = create_stack_resources(template, self._moto_clients())
        say(f"moto server {self.endpoint}: created {_summary(created)} from {template.path.name}")
        return created

    def sqs_client(self):
        # --aws-endpoint: that emulator's credentials
        return self.external.session.client("sqs") if self.external else self._moto_clients().client("sqs")

    def ready_info(self) -> dict:
        return self.external.ready_info() if self.external else {}

    def moto_alive(self) -> bool:
        return self.moto is not None and self.moto.poll() is None

    def session(self) -> _EndpointSession:
        """Clients of the embedded moto with the stack's identity."""
        return self._moto_clients()

    def stop(self) -> None:
        processes.stop(self.moto, grace_s=5)

    def _moto_clients(self) -> _EndpointSession:
        return _EndpointSession(boto3.session.Session(region_name=REGION,
                                                      aws_access_key_id=self.identity.access_key_id,
                                                      aws_secret_access_key=self.identity.secret_access_key),
                                self.endpoint)


class _EndpointSession:
    """A boto3 session whose clients all talk to one endpoint."""

    def __init__(self, session: boto3.session.Session, endpoint: str) -> None:
        self.session, self.endpoint = session, endpoint

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint)


def _summary(created: dict[str, dict]) -> str:
    return ", ".join(f"{len(items)} {kind}" for kind, items in created.items())
