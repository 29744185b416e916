"""InferPath=lambda in the local stack: the infer function's SQS and schedule events read from template.yaml,
its execution environments, and the emulated event source mapping that feeds them (event_source.py)."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable

from .event_source import EventSourceMapping, Schedule, SqsMapping
from .lambdas import FunctionPool
from .template import FunctionSpec, StackTemplate

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def sqs_mapping(template: StackTemplate, function: str) -> SqsMapping | None:
    """The first SQS event source mapping of `function` (its queue by ARN among the template's queues), or None."""
    for props in template.event_source_mappings(function):
        arn = str(props["EventSourceArn"])
        queue = next((q for q in template.queues().values() if q["arn"] == arn), None)
        if queue is None:
            continue
        scaling = props.get("ScalingConfig") or {}
        return SqsMapping(function=function, queue_url=str(queue["url"]), queue_arn=arn,
                          enabled=_truthy(props.get("Enabled", True)), batch_size=int(props.get("BatchSize", 10)),
                          window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                          max_concurrency=int(scaling.get("MaximumConcurrency", 1000)),
                          report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []))
    return None


def schedules(template: StackTemplate, function: str) -> list[Schedule]:
    found = []
    for props in template.schedule_rules(function):
        match = _RATE.fullmatch(str(props.get("ScheduleExpression", "")).strip())
        if match:  # cron() expressions are not emulated
            found.append(Schedule(function, int(match[1]) * _UNIT_S[match[2].rstrip("s")],
                                  str(props.get("State", "ENABLED")).upper() == "ENABLED"))
    return found


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
