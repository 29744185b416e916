"""InferPath=lambda in the local stack: the infer function's SQS and schedule events read from template.yaml,
its execution environments, and the emulated event source mapping that feeds them (event_source.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from .event_source import EventSourceMapping
from .lambdas import FunctionPool
from .template import FunctionSpec, StackTemplate

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class SqsMapping:
    """The function's SQS event, resolved from template.yaml."""
    function: str
    queue_url: str
    queue_arn: str
    enabled: bool
    batch_size: int
    window_s: float
    max_concurrency: int
    report_failures: bool


@dataclass(frozen=True)
class Schedule:
    function: str
    interval_s: float
    enabled: bool


def sqs_mapping(template: StackTemplate, function: str) -> SqsMapping | None:
    """The first SQS event of `function` (its queue by ARN among the template's queues), or None."""
    for props in _events(template, function, "SQS"):
        arn = str(props["Queue"])
        queue = next(q for q in template.queues().values() if q["arn"] == arn)
        scaling = props.get("ScalingConfig") or {}
        return SqsMapping(function=function, queue_url=str(queue["url"]), queue_arn=arn,
                          enabled=_truthy(props.get("Enabled", True)), batch_size=int(props.get("BatchSize", 10)),
                          window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                          max_concurrency=int(scaling.get("MaximumConcurrency", 1000)),
                          report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []))
    return None


def schedules(template: StackTemplate, function: str) -> list[Schedule]:
    found = []
    for props in _events(template, function, "Schedule"):
        match = _RATE.fullmatch(str(props["Schedule"]).strip())
        if match:  # cron() expressions are not emulated
            found.append(Schedule(function, int(match[1]) * _UNIT_S[match[2].rstrip("s")],
                                  str(props.get("State", "ENABLED")).upper() == "ENABLED"
                                  and _truthy(props.get("Enabled", True))))
    return found


def _events(template: StackTemplate, function: str, kind: str) -> list[dict]:
    events = (template.resolver.resources[function].get("Properties") or {}).get("Events") or {}
    return [template.resolver.resolve(event.get("Properties") or {}) for event in events.values()
            if event.get("Type") == kind]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def start_infer_lambda(template: StackTemplate, spec: FunctionSpec, sqs, *, max_local: int, region: str,
                       overrides: dict[str, str], say: Callable[[str], None],
                       nice: int = 0) -> EventSourceMapping | None:
    """The mapping of spec's SQS event, started, or None when the template disables it (InferPath=ec2).

    Concurrency is the template's MaximumConcurrency capped at max_local: two cores hold two single-threaded
    forward passes at once, so more environments would only queue on the same CPUs."""
    mapping = sqs_mapping(template, spec.logical_id)
    if mapping is None or not mapping.enabled:
        return None
    concurrency = max(1, min(mapping.max_concurrency, max_local))
    pool = FunctionPool(replace(spec, environment={**spec.environment, **overrides}), concurrency, region,
                        template.resolver.identity.account_id)
    esm = EventSourceMapping(sqs, mapping, pool, concurrency, say, nice=nice)
    esm.start()
    for schedule in schedules(template, spec.logical_id):
        if schedule.enabled:
            esm.add_schedule(schedule)
    say(f"{spec.logical_id}: SQS event source mapping (emulated) on {mapping.queue_url.rsplit('/', 1)[-1]}: "
        f"batch {mapping.batch_size}, window {mapping.window_s:g}s, concurrency {concurrency} "
        f"(template {mapping.max_concurrency}, local cap {max_local}), timeout {spec.timeout_s}s, "
        f"memory {spec.memory_mb} MB")
    return esm
