"""`--aws-endpoint URL|localstack`: an AWS emulator already running (LocalStack, a moto server) instead of the
embedded moto. The template's tables, queues and bucket are created there when missing, found (and checked
against the template) when a previous start left them, so data outlives a restart of the local stack.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from .endpoint import EndpointSession, existing, queue_url_parts, verify
from .intrinsics import StackIdentity
from .report import say
from .resources import create_stack_resources

REAL_AWS_SUFFIXES = ("amazonaws.com", "amazonaws.com.cn", "api.aws")
LOCALSTACK_SERVICES = ("s3", "sqs", "dynamodb")


def resolve_endpoint(value: str) -> str:
    """The endpoint URL; `localstack` asks localstack-client where it is (AWS_ENDPOINT_URL, LOCALSTACK_HOST, USE_SSL)."""
    if value == "localstack":
        from localstack_client.config import get_service_endpoint

        urls = {get_service_endpoint(service) for service in LOCALSTACK_SERVICES}
        if len(urls) != 1:
            raise SystemExit(f"LocalStack serves {LOCALSTACK_SERVICES} on different endpoints {sorted(urls)}: "
                             f"name one with --aws-endpoint URL")
        value = urls.pop()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"--aws-endpoint {value!r}: expected http(s)://host:port or 'localstack'")
    host = parts.hostname.lower()
    if any(host == suffix or host.endswith("." + suffix) for suffix in REAL_AWS_SUFFIXES):
        raise SystemExit(f"--aws-endpoint {value}: refusing to create resources on real AWS; deploy with "
                         f"`sam deploy` (docs/deploy.md)")
    return value.rstrip("/")


class ExternalEndpoint:
    def __init__(self, value: str, region: str) -> None:
        self.endpoint = resolve_endpoint(value)
        # the emulator's credentials: the caller's, else the "test" pair LocalStack and moto accept
        self.credentials_env = {"AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID") or "test",
                                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"}
        self.session = EndpointSession(self.endpoint, region)
        self.region = region
        self.found: dict[str, list[str]] = {}
        self.created = False

    def identity(self, params: dict[str, str]) -> StackIdentity:
        """Queue URLs and the account as this endpoint forms them (LocalStack 000000000000, moto 123456789012)."""
        base, account = queue_url_parts(self.session)
        return StackIdentity(stack_name=f"cxr-{params.get('Stage', 'local')}", region=self.region,
                             account_id=account, queue_url_base=base)

    def ensure_resources(self, template) -> dict[str, dict]:
        """Create the declared resources when none exist; use them when all do; refuse a partial or drifted set."""
        declared = {"tables": sorted(template.tables()), "queues": sorted(template.queues()),
                    "buckets": sorted(template.buckets())}
        self.found = existing(self.session, template)
        if not any(self.found.values()):
            created = create_stack_resources(template, self.session)
            self.created = True
            say(f"{self.endpoint}: created {', '.join(f'{len(v)} {k}' for k, v in created.items())} "
                f"from {template.path.name}")
        elif self.found == declared:
            say(f"{self.endpoint}: found the template's {len(declared['tables'])} tables, "
                f"{len(declared['queues'])} queues and {len(declared['buckets'])} buckets; using them")
        else:
            missing = {kind: sorted(set(names) - set(self.found[kind])) for kind, names in declared.items()}
            raise RuntimeError(f"{self.endpoint} has only part of the template's resources (missing {missing}); "
                               f"delete the rest or create them with `python -m cxr_local.endpoint`")
        problems = verify(self.session, template)
        if problems:
            raise RuntimeError(f"{self.endpoint}: resources differ from {template.path.name}: " + "; ".join(problems))
        return {"tables": {t["logical_id"]: name for name, t in template.tables().items()},
                "queues": {q["logical_id"]: q["url"] for q in template.queues().values()},
                "buckets": {b["logical_id"]: name for name, b in template.buckets().items()}}

    def ready_info(self) -> dict:
        return {"resources_created": self.created, "aws_access_key_id": self.credentials_env["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": self.credentials_env["AWS_SECRET_ACCESS_KEY"]}
